//! Voids: a linked compensating entry, refused in words when it cannot be, once however many race.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::history::db::{history_page, void};
use app::history::{void_outcome_from_query, void_return_path};
use chrono::Utc;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{HistoryFilter, LedgerEntry, Role, TxType};
use server::testkit::{TestDb, Till, member_of, new_program};
use tokio::sync::Barrier;

use crate::{last_id, transact};

/// The query parameters of a path, as the page reads them.
fn query_map(path: &str) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = path
        .split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn a_plain_form_void_goes_back_to_the_page_it_came_from_with_its_outcome() {
    let entry = LedgerEntry {
        id: 15,
        external_id: "MBR-ABCD2345".into(),
        tx_type: TxType::Redeem,
        points: 5,
        balance_after: 0,
        description: None,
        staff_name: None,
        created_at: Utc::now(),
        local_at: Utc::now().naive_utc(),
        voids: Some(12),
        voided_by: None,
        sold_at: None,
        local_sold_at: None,
    };
    assert_eq!(
        void_return_path(
            Some("http://shop.example:3000/history?type=EARN&void_error=ALREADY_VOIDED&cursor=1_2"),
            12,
            &Ok(entry)
        ),
        "/history?type=EARN&cursor=1_2&voided=12"
    );
    assert_eq!(
        void_return_path(
            Some("https://evil.example/elsewhere?x=1"),
            12,
            &Err(LoyaltyError::AlreadyVoided)
        ),
        "/history?void_error=ALREADY_VOIDED"
    );
    for err in [
        LoyaltyError::InsufficientFunds { balance: 10 },
        LoyaltyError::AlreadyVoided,
        LoyaltyError::CannotVoidAVoid,
        LoyaltyError::TransactionNotFound,
        LoyaltyError::ManagersOnly,
        LoyaltyError::CsrfRejected,
        LoyaltyError::InvalidVoidReason,
    ] {
        let path = void_return_path(None, 12, &Err(err.clone()));
        assert_eq!(
            void_outcome_from_query(query_map(&path)),
            Some(Err(err)),
            "{path}"
        );
    }
    assert_eq!(
        void_outcome_from_query(query_map("/history?voided=12")),
        Some(Ok(12))
    );
    assert_eq!(
        void_outcome_from_query(query_map("/history?type=EARN")),
        None
    );
    // Only codes travel: a crafted link cannot put words on the page.
    assert_eq!(
        void_outcome_from_query(query_map(
            "/history?void_error=INVALID_VOID_REASON&message=Call+us"
        )),
        Some(Err(LoyaltyError::InvalidVoidReason))
    );
    assert_eq!(
        void_outcome_from_query(query_map(
            "/history?void_error=INVALID_INPUT&message=Call+us"
        )),
        Some(Err(LoyaltyError::Internal)),
        "an error whose words would come from the link is not made from it"
    );
}

#[tokio::test]
async fn a_void_is_a_linked_compensating_entry_that_restores_the_balance() {
    let db = TestDb::new().await;
    let manager = db
        .staff_named(
            db.program_id,
            "alice@example.com",
            "Alice Manager",
            Role::Manager,
        )
        .await;
    let member = db.member(100).await;
    let till = Till::manager(&db).await;
    let earned = transact(&till, &member, 50, TxType::Earn).await;
    assert_eq!(db.balance(&member).await, 150);

    let void_of_earn = void(
        &db.app,
        db.program_id,
        Some(manager),
        earned,
        "  wrong member  ",
    )
    .await
    .unwrap();
    assert_eq!(void_of_earn.tx_type, TxType::Redeem);
    assert_eq!(void_of_earn.points, 50);
    assert_eq!(void_of_earn.voids, Some(earned));
    assert_eq!(void_of_earn.balance_after, 100);
    assert_eq!(void_of_earn.external_id, member);
    assert_eq!(void_of_earn.staff_name.as_deref(), Some("Alice Manager"));
    assert_eq!(
        void_of_earn.description.as_deref(),
        Some(format!("Void of #{earned}: wrong member").as_str())
    );
    assert_eq!(db.balance(&member).await, 100);

    let redeemed = transact(&till, &member, 30, TxType::Redeem).await;
    let void_of_redeem = void(
        &db.app,
        db.program_id,
        Some(manager),
        redeemed,
        "customer kept the gift",
    )
    .await
    .unwrap();
    assert_eq!(void_of_redeem.tx_type, TxType::Earn);
    assert_eq!(void_of_redeem.balance_after, 100);
    assert_eq!(db.balance(&member).await, 100);
    assert!(db.invariant_violations().await.is_empty());

    // The history shows both ends of each link.
    let page = history_page(&db.app, db.program_id, &HistoryFilter::default(), None, 50)
        .await
        .unwrap();
    let by_id: BTreeMap<i64, &LedgerEntry> = page.entries.iter().map(|e| (e.id, e)).collect();
    assert_eq!(by_id[&earned].voided_by, Some(void_of_earn.id));
    assert_eq!(by_id[&redeemed].voided_by, Some(void_of_redeem.id));
    assert_eq!(by_id[&void_of_earn.id].voids, Some(earned));
    assert_eq!(by_id[&void_of_earn.id].voided_by, None);
    assert_eq!(page.entries.len(), 5);
}

#[tokio::test]
async fn refused_voids_say_why_and_write_nothing() {
    let db = TestDb::new().await;
    let member = db.member(0).await;
    let till = Till::manager(&db).await;
    let earned = transact(&till, &member, 50, TxType::Earn).await;
    let spent = transact(&till, &member, 40, TxType::Redeem).await;

    let too_long = "x".repeat(401);
    let refusals: Vec<(i64, &str, LoyaltyError, &str)> = vec![
        (
            earned,
            "points given by mistake",
            LoyaltyError::InsufficientFunds { balance: 10 },
            "Not enough points: the balance is 10 points.",
        ),
        (
            987_654,
            "no such row",
            LoyaltyError::TransactionNotFound,
            "No such transaction in this program.",
        ),
        (spent, "", LoyaltyError::InvalidDescription, ""),
        (spent, "   \n ", LoyaltyError::InvalidDescription, ""),
        (spent, &too_long, LoyaltyError::InvalidDescription, ""),
    ];
    let rows = db.ledger_rows().await;
    for (id, reason, expected, message) in refusals {
        let err = void(&db.app, db.program_id, None, id, reason)
            .await
            .unwrap_err();
        assert_eq!(err, expected, "{id} {reason:?}");
        if !message.is_empty() {
            assert_eq!(err.to_string(), message);
        }
        assert_eq!(db.ledger_rows().await, rows);
        assert_eq!(db.balance(&member).await, 10);
    }
    let answer: serde_json::Value = sqlx::query_scalar("select void_transaction($1, $2, null)")
        .bind(db.program_id)
        .bind(spent)
        .fetch_one(&db.app)
        .await
        .unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"success": false, "error": "INVALID_DESCRIPTION"})
    );

    // 400 characters, any characters, is a reason.
    let void_of_redeem = void(&db.app, db.program_id, None, spent, &"é".repeat(400))
        .await
        .unwrap();
    assert_eq!(db.balance(&member).await, 50);
    let rows = db.ledger_rows().await;
    assert_eq!(
        void(&db.app, db.program_id, None, spent, "again").await,
        Err(LoyaltyError::AlreadyVoided)
    );
    assert_eq!(
        void(
            &db.app,
            db.program_id,
            None,
            void_of_redeem.id,
            "undo the undo"
        )
        .await,
        Err(LoyaltyError::CannotVoidAVoid)
    );
    assert_eq!(
        LoyaltyError::CannotVoidAVoid.to_string(),
        "A void cannot itself be voided."
    );
    assert_eq!(db.ledger_rows().await, rows);
    assert_eq!(db.balance(&member).await, 50);

    // Another program's transaction does not exist here, and stays as it was.
    let other = new_program(&db.owner, "Other program").await;
    let theirs = member_of(&db.owner, other, 30).await;
    let their_tx: i64 = sqlx::query_scalar("select id from transactions where program_id = $1")
        .bind(other)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(
        void(&db.app, db.program_id, None, their_tx, "not ours").await,
        Err(LoyaltyError::TransactionNotFound)
    );
    assert_eq!(db.balance(&theirs).await, 30);
    assert_eq!(db.ledger_rows().await, rows + 1);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn race_test_32_concurrent_voids_of_one_transaction_one_succeeds() {
    const VOIDERS: usize = 32;
    let db = TestDb::with_pool_size(VOIDERS as u32).await;
    let member = db.member(100).await;
    let target = last_id(&db).await;
    let barrier = Arc::new(Barrier::new(VOIDERS));
    let tasks: Vec<_> = (0..VOIDERS)
        .map(|i| {
            let (pool, program_id, barrier) = (db.app.clone(), db.program_id, barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                void(&pool, program_id, None, target, &format!("attempt {i}")).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(
        answers.iter().filter(|a| a.is_ok()).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|a| a.is_err())
            .all(|a| a == &Err(LoyaltyError::AlreadyVoided)),
        "{answers:?}"
    );
    let voids: i64 = sqlx::query_scalar("select count(*) from transactions where voids_id = $1")
        .bind(target)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(voids, 1);
    assert_eq!(db.balance(&member).await, 0);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn void_transaction_is_hardened_like_the_other_functions() {
    let db = TestDb::new().await;
    let (config, public_may, app_may): (Option<Vec<String>>, bool, bool) = sqlx::query_as(
        "select p.proconfig,
                has_function_privilege('bystander', p.oid, 'execute'),
                has_function_privilege('loyalty_app', p.oid, 'execute')
           from pg_proc p
          where p.oid = 'public.void_transaction(uuid, bigint, text, uuid)'::regprocedure and p.prosecdef",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        config,
        Some(vec!["search_path=pg_catalog, pg_temp".to_owned()])
    );
    assert!(!public_may);
    assert!(app_may);
}
