//! Replacing a lost pass: the balance, phone number and email move to a new pass as a pair of ledger rows, the
//! old pass stops working everywhere, and of two staff members replacing one pass at once one wins.

use std::sync::Arc;

use loyalty_core::LoyaltyError;
use loyalty_core::wire::ScanOutcome;
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestDb, TestServer, Till, member_of, new_program, refused};
use tokio::sync::Barrier;

/// The ledger of a pass, oldest first: type, points, balance after, description, marked as a move.
async fn ledger_of(db: &TestDb, external_id: &str) -> Vec<(String, i32, i32, String, bool)> {
    sqlx::query_as(
        "select t.type, t.points, t.balance_after, coalesce(t.description, ''),
                coalesce(d.moved, false)
           from transactions t
           join passes_master m on m.program_id = t.program_id and m.id = t.member_id
           left join ledger_details d on d.program_id = t.program_id and d.transaction_id = t.id
          where m.external_id = $1
          order by t.id",
    )
    .bind(external_id)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

fn is_replaced(result: &Result<impl std::fmt::Debug, LoyaltyError>) -> bool {
    matches!(result, Err(LoyaltyError::PassReplaced { .. }))
}

#[tokio::test]
async fn a_lost_pass_gives_its_balance_and_contact_to_a_new_one_and_stops_working() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let old = db.member(40).await;
    clerk.set_contact(&old, "06 12 34 48 21").await.unwrap();

    // Found by the phone number, then replaced.
    match clerk.scan("06 12 34 48 21").await.unwrap() {
        ScanOutcome::Member { member } => assert_eq!(member.external_id, old),
        other => panic!("{other:?}"),
    }
    let new = clerk.replace_pass(&old).await.unwrap();
    assert!(new.external_id.starts_with("MBR-"), "{new:?}");
    assert_eq!(new.points, 40);
    assert_eq!(db.balance(&old).await, 0);
    assert_eq!(db.balance(&new.external_id).await, 40);

    // A pair of rows, each marked as a move.
    let old_ledger = ledger_of(&db, &old).await;
    assert_eq!(
        old_ledger.last().unwrap(),
        &(
            "REDEEM".to_owned(),
            40,
            0,
            format!("Moved to the new pass {}", new.external_id),
            true
        )
    );
    assert_eq!(
        ledger_of(&db, &new.external_id).await,
        [(
            "EARN".to_owned(),
            40,
            40,
            format!("Moved from the lost pass {old}"),
            true
        )]
    );
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
    // A move is neither earned nor redeemed in the program's numbers: the 40 points were earned once.
    let months = app::numbers::db::months(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!(
        (months[0].earned, months[0].redeemed, months[0].adjusted),
        (40, 0, 0)
    );

    // The phone number now finds the new pass; the old one is refused everywhere, naming the day.
    match clerk.scan("+33612344821").await.unwrap() {
        ScanOutcome::Member { member } => assert_eq!(member.external_id, new.external_id),
        other => panic!("{other:?}"),
    }
    let scanned = clerk.scan(&old).await;
    assert!(is_replaced(&scanned), "{scanned:?}");
    assert!(
        scanned
            .unwrap_err()
            .to_string()
            .starts_with("This pass was replaced on "),
    );
    let manager = Till::manager(&db).await;
    assert!(is_replaced(&manager.earn(&old, 5).await));
    assert!(is_replaced(&clerk.sale(&old, "12.50", None, None).await));
    assert!(is_replaced(&clerk.replace_pass(&old).await));
    // The new pass works as any other.
    assert_eq!(
        clerk
            .sale(&new.external_id, "10", None, None)
            .await
            .unwrap()
            .new_balance,
        50
    );
    let detail = app::members::db::member_detail(&db.app, db.program_id, &old, 10)
        .await
        .unwrap();
    assert_eq!(
        detail.replaced.map(|(_, by)| by),
        Some(new.external_id.clone())
    );
    assert!(detail.contacts.is_empty());
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_pass_with_no_points_is_replaced_with_no_ledger_rows() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let old = db.member(0).await;
    let new = clerk.replace_pass(&old).await.unwrap();
    assert_eq!(new.points, 0);
    assert!(ledger_of(&db, &old).await.is_empty());
    assert!(ledger_of(&db, &new.external_id).await.is_empty());
    assert_eq!(
        clerk.replace_pass("MBR-NXSVCHPASS").await,
        Err(LoyaltyError::MemberNotFound)
    );
}

#[tokio::test]
async fn of_clerks_replacing_one_pass_at_once_exactly_one_does() {
    const CLERKS: usize = 8;
    let db = TestDb::with_pool_size(CLERKS as u32 + 4).await;
    let old = db.member(75).await;
    let tills = Till::clerks(&db, CLERKS).await;
    let barrier = Arc::new(Barrier::new(CLERKS));
    let tasks: Vec<_> = tills
        .into_iter()
        .map(|till| {
            let (barrier, old) = (barrier.clone(), old.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                till.replace_pass(&old).await
            })
        })
        .collect();
    let mut new_passes = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(member) => new_passes.push(member.external_id),
            Err(LoyaltyError::PassReplaced { .. }) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(new_passes.len(), 1, "{new_passes:?}");
    let passes: i64 =
        sqlx::query_scalar("select count(*) from passes_master where program_id = $1")
            .bind(db.program_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(passes, 2, "one new pass, not one per clerk");
    assert_eq!(db.balance(&new_passes[0]).await, 75);
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn earns_racing_a_replacement_land_on_the_new_pass_or_are_refused_never_lost() {
    const EARNS: usize = 12;
    let db = TestDb::with_pool_size(EARNS as u32 + 6).await;
    let old = db.member(100).await;
    let managers = Till::managers(&db, EARNS).await;
    let clerk = Till::clerk(&db).await;
    let barrier = Arc::new(Barrier::new(EARNS + 1));
    let earns: Vec<_> = managers
        .into_iter()
        .map(|till| {
            let (barrier, old) = (barrier.clone(), old.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                till.earn(&old, 7).await
            })
        })
        .collect();
    let replacing = {
        let (barrier, old) = (barrier.clone(), old.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            clerk.replace_pass(&old).await
        })
    };
    let new = replacing.await.unwrap().unwrap();
    let mut landed = 0;
    for earn in earns {
        match earn.await.unwrap() {
            Ok(_) => landed += 1,
            Err(LoyaltyError::PassReplaced { .. }) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    eprintln!("{landed} of {EARNS} earns went in before the replacement");
    assert_eq!(db.balance(&new.external_id).await, 100 + 7 * landed as i64);
    assert_eq!(db.balance(&old).await, 0);
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn over_http_the_old_pass_page_dies_and_a_replacement_is_refused_across_programs() {
    let server = TestServer::start().await;
    let db = &server.db;
    let old = db.member(20).await;
    let token: String =
        sqlx::query_scalar("select pass_token from passes_master where external_id = $1")
            .bind(&old)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let page = |token: String| {
        let url = format!("{}/pass/{token}", server.url);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert!(
        page(token.clone()).await.contains("20"),
        "the page shows the pass"
    );
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let response = clerk.change("replace_pass", &[("external_id", &old)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let new: loyalty_core::wire::Member = response.json().await.unwrap();
    assert_eq!(new.points, 20);
    let body = page(token).await;
    assert!(
        body.contains("not found") || body.contains("Not found"),
        "{body}"
    );

    let (status, err) = refused(clerk.change("scan", &[("code", &old)]).await).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(matches!(err, LoyaltyError::PassReplaced { .. }), "{err:?}");

    let other = new_program(&db.owner, "Another Café").await;
    let theirs = member_of(&db.owner, other, 9).await;
    let (status, err) = refused(
        clerk
            .change("replace_pass", &[("external_id", &theirs)])
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (StatusCode::NOT_FOUND, LoyaltyError::MemberNotFound)
    );
    assert_eq!(db.balance(&theirs).await, 9);
}
