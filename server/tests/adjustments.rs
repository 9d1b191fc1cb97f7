//! Points typed by hand are a manager's adjustment with a reason: the database refuses a clerk and a missing
//! reason, records the reason on the ledger row and marks the row as an adjustment; a clerk's points come from
//! sales and rewards.

use app::points::db::PointsRequest;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::TxType;
use server::testkit::{ApiClient, REASON, TestDb, TestServer, Till, points_request, refused};

/// Whether the ledger row is marked as an adjustment beside it.
async fn is_adjustment(db: &TestDb, transaction_id: i64) -> bool {
    sqlx::query_scalar(
        "select coalesce((select d.adjustment from ledger_details d where d.transaction_id = $1), false)",
    )
    .bind(transaction_id)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_clerk_cannot_type_points_by_hand_and_nothing_changes() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(100).await;
    let rows = db.ledger_rows().await;
    for tx_type in [TxType::Earn, TxType::Redeem] {
        let err = clerk
            .apply(&points_request(&member, tx_type, 10))
            .await
            .unwrap_err();
        assert_eq!(err, LoyaltyError::AdjustmentForManagers, "{tx_type:?}");
    }
    assert_eq!(db.balance(&member).await, 100);
    assert_eq!(db.ledger_rows().await, rows);
    // The clerk's way: a sale, counted by the program's rules, and not an adjustment.
    let sale = clerk.sale(&member, "12.50", None, None).await.unwrap();
    assert_eq!((sale.points, sale.new_balance), (12, 112));
    assert!(!is_adjustment(&db, sale.transaction_id).await);
}

#[tokio::test]
async fn an_adjustment_without_a_reason_is_refused_and_changes_nothing() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let member = db.member(100).await;
    let rows = db.ledger_rows().await;
    for reason in [None, Some(""), Some("   "), Some("ok")] {
        let err = manager
            .apply(&PointsRequest {
                note: reason,
                ..points_request(&member, TxType::Earn, 10)
            })
            .await
            .unwrap_err();
        assert_eq!(err, LoyaltyError::ReasonRequired, "{reason:?}");
    }
    let too_long = "x".repeat(501);
    let err = manager
        .apply(&PointsRequest {
            note: Some(&too_long),
            ..points_request(&member, TxType::Redeem, 10)
        })
        .await
        .unwrap_err();
    assert_eq!(err, LoyaltyError::ReasonRequired);
    assert_eq!(db.balance(&member).await, 100);
    assert_eq!(db.ledger_rows().await, rows);
}

#[tokio::test]
async fn an_adjustment_records_its_reason_its_manager_and_its_mark() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let member = db.member(100).await;
    let taken = manager
        .apply(&PointsRequest {
            note: Some("  coffee machine broken, refunded  "),
            idempotency_key: Some("adjust-1"),
            ..points_request(&member, TxType::Redeem, 30)
        })
        .await
        .unwrap();
    assert_eq!(taken.new_balance, 70);
    let (description, staff_id): (Option<String>, Option<uuid::Uuid>) =
        sqlx::query_as("select description, staff_id from transactions where id = $1")
            .bind(taken.transaction_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(
        (description.as_deref(), staff_id),
        (
            Some("coffee machine broken, refunded"),
            Some(manager.staff.id)
        )
    );
    assert!(is_adjustment(&db, taken.transaction_id).await);
    // Sent again, it is the same adjustment, once.
    let again = manager
        .apply(&PointsRequest {
            note: Some("coffee machine broken, refunded"),
            idempotency_key: Some("adjust-1"),
            ..points_request(&member, TxType::Redeem, 30)
        })
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.transaction_id, taken.transaction_id);
    assert_eq!(db.balance(&member).await, 70);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn a_sales_key_cannot_be_replayed_as_an_adjustment() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let member = db.member(0).await;
    let sale = manager
        .sale(&member, "12", Some("till-7-sale-1"), None)
        .await
        .unwrap();
    assert_eq!(sale.points, 12);
    let err = manager
        .apply(&PointsRequest {
            idempotency_key: Some("till-7-sale-1"),
            ..points_request(&member, TxType::Earn, 12)
        })
        .await
        .unwrap_err();
    assert_eq!(err, LoyaltyError::IdempotencyMismatch);
    assert_eq!(db.balance(&member).await, 12);
}

/// Over HTTP, as the dashboard and the counter terminal send it: a clerk is refused with 403 and the sentence, a
/// manager's adjustment goes through with its reason.
#[tokio::test]
async fn over_http_only_a_manager_adjusts_and_says_why() {
    let server = TestServer::start().await;
    let member = server.db.member(50).await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let answer = clerk
        .change(
            "earn",
            &[
                ("external_id", member.as_str()),
                ("points", "10"),
                ("note", REASON),
                ("idempotency_key", ""),
            ],
        )
        .await;
    let (status, body) = refused(answer).await;
    assert_eq!(
        (status.as_u16(), &body),
        (403, &LoyaltyError::AdjustmentForManagers)
    );
    assert_eq!(
        body.to_string(),
        "Points typed by hand are a manager's adjustment: record the sale, or redeem a reward, instead."
    );

    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let no_reason = manager
        .change(
            "redeem",
            &[
                ("external_id", member.as_str()),
                ("points", "10"),
                ("idempotency_key", ""),
            ],
        )
        .await;
    let (status, body) = refused(no_reason).await;
    assert_eq!((status.as_u16(), body), (422, LoyaltyError::ReasonRequired));
    let adjusted = manager
        .change(
            "redeem",
            &[
                ("external_id", member.as_str()),
                ("points", "10"),
                ("note", "returned the mug"),
                ("idempotency_key", ""),
            ],
        )
        .await;
    assert_eq!(adjusted.status(), 200);
    assert_eq!(server.db.balance(&member).await, 40);
}

/// The Numbers page counts adjustments apart from earns and redeems, and a voided adjustment counts for nothing.
#[tokio::test]
async fn the_numbers_count_adjustments_apart_and_a_void_takes_one_back() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(0).await;
    clerk.sale(&member, "40", None, None).await.unwrap();
    let added = manager.earn(&member, 25).await.unwrap();
    manager.redeem(&member, 5).await.unwrap();
    let totals = |numbers: &app::numbers::ProgramNumbers| {
        let sum =
            |of: fn(&app::numbers::MonthPoints) -> i64| numbers.months.iter().map(of).sum::<i64>();
        (sum(|m| m.earned), sum(|m| m.redeemed), sum(|m| m.adjusted))
    };
    let numbers = app::numbers::db::numbers(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!(totals(&numbers), (40, 0, 20));

    app::history::db::void(
        &db.app,
        db.program_id,
        Some(manager.staff.id),
        added.transaction_id,
        "entered twice",
    )
    .await
    .unwrap();
    let numbers = app::numbers::db::numbers(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!(totals(&numbers), (40, 0, -5));
    assert_eq!(db.balance(&member).await, 35);
    assert!(db.invariant_violations().await.is_empty());
}
