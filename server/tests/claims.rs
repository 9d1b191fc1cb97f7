//! Postcards are burned exactly once, each into exactly one member pass.

use std::sync::Arc;

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PassOrigin, ScanOutcome};
use server::testkit::{TestDb, Till};
use tokio::sync::Barrier;

#[tokio::test]
async fn double_tap_claims_once_then_says_when() {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let code = db.postcard().await;

    let first = till.scan(&code).await.unwrap();
    let ScanOutcome::Claimed { member, .. } = &first else {
        panic!("expected a claim, got {first:?}");
    };
    assert_eq!(member.origin, PassOrigin::Postcard);
    assert!(member.external_id.starts_with("CLM-"));
    assert_eq!(member.points, 0);

    let second = till.scan(&code).await.unwrap_err();
    let LoyaltyError::AlreadyClaimed { claimed_at } = second else {
        panic!("expected ALREADY_CLAIMED, got {second:?}");
    };
    let today = chrono::Utc::now().format("%-d %b %Y").to_string();
    assert_eq!(
        second.to_string(),
        format!("This postcard has already been claimed on {today}.")
    );
    let stored: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select claimed_at from claim_codes where code = $1")
            .bind(&code)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(claimed_at, stored);
}

#[tokio::test]
async fn the_pass_a_postcard_became_opens_its_member() {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let code = db.postcard().await;
    let claimed = till.scan(&code).await.unwrap();
    let pass = claimed.member().external_id.to_ascii_lowercase();

    let scanned = till.scan(&format!("  {pass} ")).await.unwrap();
    assert_eq!(
        scanned,
        ScanOutcome::Member {
            member: claimed.member().clone()
        }
    );
}

#[tokio::test]
async fn the_answer_describes_the_state_after_the_burn() {
    let db = TestDb::new().await;
    let code = db.postcard().await;
    let answer: serde_json::Value = sqlx::query_scalar("select process_claim_attempt($1, $2)")
        .bind(&code)
        .bind(db.program_id)
        .fetch_one(&db.app)
        .await
        .unwrap();
    assert_eq!(answer["success"], true);
    assert!(answer["data"]["claimed_at"].is_string(), "{answer}");
    let (pass_external_id, claimed): (String, bool) = sqlx::query_as(
        "select m.external_id, c.claimed_at is not null
           from claim_codes c join passes_master m on m.program_id = c.program_id and m.id = c.pass_id
          where c.code = $1",
    )
    .bind(&code)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(claimed);
    assert_eq!(answer["data"]["pass"]["external_id"], pass_external_id);
}

#[tokio::test]
async fn two_hundred_concurrent_claims_of_one_postcard_burn_it_once() {
    const TASKS: usize = 200;
    // Each clerk's scans queue behind one another (the throttle counts them one by one): many clerks race.
    const CLERKS: usize = 20;
    let db = TestDb::with_pool_size(40).await;
    let tills = Till::clerks(&db, CLERKS).await;
    let code = db.postcard().await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let (till, code, barrier) = (tills[n % CLERKS].clone(), code.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                till.scan(&code).await
            })
        })
        .collect();
    let mut claimed = 0;
    let mut already = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(ScanOutcome::Claimed { .. }) => claimed += 1,
            Err(LoyaltyError::AlreadyClaimed { .. }) => already += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((claimed, already), (1, TASKS - 1));
    let passes: i64 =
        sqlx::query_scalar("select count(*) from passes_master where external_id like 'CLM-%'")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(passes, 1);
}

#[tokio::test]
async fn unknown_malformed_and_mistyped_codes_are_told_apart() {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let code = db.postcard().await;
    // A well-formed code that was never issued.
    let unissued = loyalty_core::code::claim_code_from_body("ABCDEFGHJKMN");
    assert_eq!(till.scan(&unissued).await, Err(LoyaltyError::InvalidCode));
    assert_eq!(
        till.scan("hello world").await,
        Err(LoyaltyError::MalformedCode)
    );
    let mut typo = code.into_bytes();
    typo.swap(5, 6);
    if typo[5] == typo[6] {
        typo[5] = if typo[5] == b'A' { b'B' } else { b'A' };
    }
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(till.scan(&typo).await, Err(LoyaltyError::MistypedCode));
    assert_eq!(
        till.scan("MBR-ZZZZ2222").await,
        Err(LoyaltyError::MemberNotFound)
    );
}

#[tokio::test]
async fn another_programs_postcard_and_member_are_not_found() {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let their_code = server::testkit::postcard_of(&db.owner, other).await;
    let their_member = server::testkit::member_of(&db.owner, other, 50).await;

    assert_eq!(till.scan(&their_code).await, Err(LoyaltyError::InvalidCode));
    assert_eq!(
        till.scan(&their_member).await,
        Err(LoyaltyError::MemberNotFound)
    );
    let unclaimed: bool =
        sqlx::query_scalar("select claimed_at is null from claim_codes where code = $1")
            .bind(&their_code)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert!(
        unclaimed,
        "scanning in another program must not burn the postcard"
    );
}

#[tokio::test]
async fn postcard_codes_made_by_the_database_pass_the_parsers_check() {
    let db = TestDb::new().await;
    let codes: Vec<String> =
        sqlx::query_scalar("select public.new_claim_code() from generate_series(1, 2000)")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    for code in codes {
        assert_eq!(
            loyalty_core::parse_scan(&code),
            Ok(loyalty_core::ScanCode::Claim(code.clone())),
            "{code}"
        );
    }
}
