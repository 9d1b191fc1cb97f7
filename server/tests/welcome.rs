//! Welcome gifts: a postcard batch's welcome points are earned in the claim's transaction, a claim after the
//! batch's last day is refused and burns nothing, and passes made at the counter or by sign-up get the
//! program's welcome points.

use std::sync::Arc;

use app::batches::db::{BatchOffer, create_batch, create_batch_with_offer};
use chrono::{NaiveDate, TimeDelta};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PassOrigin, ScanOutcome};
use server::testkit::{TestDb, Till, new_program};
use tokio::sync::Barrier;
use uuid::Uuid;

/// A batch of `size` postcards with `offer`, made by the manager: its codes.
async fn batch(db: &TestDb, manager: &Till, size: i64, offer: &BatchOffer) -> Vec<String> {
    let made = create_batch_with_offer(
        &db.app,
        db.program_id,
        manager.staff.id,
        "Spring",
        size,
        None,
        offer,
    )
    .await
    .unwrap();
    assert_eq!(
        (made.welcome_points, made.last_day),
        (offer.welcome_points, offer.last_day)
    );
    sqlx::query_scalar("select code from claim_codes where batch_id = $1 order by code")
        .bind(made.id)
        .fetch_all(&db.owner)
        .await
        .unwrap()
}

async fn program_today(db: &TestDb) -> NaiveDate {
    sqlx::query_scalar("select public.program_time($1, now())::date")
        .bind(db.program_id)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_claim_earns_the_batchs_welcome_points_in_its_own_transaction_once() {
    let db = TestDb::with_pool_size(16).await;
    let manager = Till::manager(&db).await;
    let offer = BatchOffer {
        welcome_points: 50,
        last_day: None,
    };
    let codes = batch(&db, &manager, 1, &offer).await;
    let tills = Till::clerks(&db, 8).await;
    let barrier = Arc::new(Barrier::new(24));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (till, code, barrier) = (
                tills[i % tills.len()].clone(),
                codes[0].clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                till.scan(&code).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let claimed: Vec<_> = answers
        .iter()
        .filter_map(|a| match a {
            Ok(ScanOutcome::Claimed { member, .. }) => Some(member),
            _ => None,
        })
        .collect();
    assert_eq!(claimed.len(), 1, "{answers:?}");
    assert_eq!(claimed[0].points, 50);
    assert!(
        answers
            .iter()
            .all(|a| a.is_ok() || matches!(a, Err(LoyaltyError::AlreadyClaimed { .. })))
    );
    let gifts: Vec<(String, i32, i32)> = sqlx::query_as(
        "select t.description, t.points, t.balance_after from transactions t
           join passes_master m on m.program_id = t.program_id and m.id = t.member_id
          where m.external_id = $1",
    )
    .bind(&claimed[0].external_id)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(gifts, vec![("Welcome offer: Spring".to_owned(), 50, 50)]);
    assert_eq!(db.balance(&claimed[0].external_id).await, 50);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn after_the_last_day_a_claim_is_refused_with_the_day_and_burns_nothing() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::clerk(&db).await;
    let today = program_today(&db).await;
    let yesterday = today - TimeDelta::days(1);
    let ended = batch(
        &db,
        &manager,
        1,
        &BatchOffer {
            welcome_points: 20,
            last_day: Some(yesterday),
        },
    )
    .await;
    let passes_before = db.ledger_rows().await;
    let refusal = till.scan(&ended[0]).await.unwrap_err();
    assert_eq!(
        refusal,
        LoyaltyError::CodeExpired {
            last_day: yesterday
        }
    );
    assert_eq!(
        refusal.to_string(),
        format!(
            "This postcard's offer ended on {}: it can no longer be claimed.",
            loyalty_core::error::day(&yesterday)
        )
    );
    let claimed: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select claimed_at from claim_codes where code = $1")
            .bind(&ended[0])
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(claimed, None);
    assert_eq!(db.ledger_rows().await, passes_before);

    // On its last day it still works.
    let last_day = batch(
        &db,
        &manager,
        1,
        &BatchOffer {
            welcome_points: 0,
            last_day: Some(today),
        },
    )
    .await;
    let member = till.claim(&last_day[0]).await;
    assert_eq!(db.balance(&member).await, 0);
}

#[tokio::test]
async fn new_passes_get_the_programs_welcome_points_for_their_kind() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let answer: serde_json::Value = sqlx::query_scalar(
        "select public.set_program_rules($1, $2, 'EUR', 2, 1, 100, null, 25, 10)",
    )
    .bind(db.program_id)
    .bind(manager.staff.id)
    .fetch_one(&db.app)
    .await
    .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    let counter = app::members::db::enrol_member(&db.app, db.program_id, PassOrigin::Counter)
        .await
        .unwrap();
    assert_eq!(counter.points, 25);
    assert_eq!(db.balance(&counter.external_id).await, 25);
    sqlx::query("update programs set public_slug = 'welcome-cafe' where id = $1")
        .bind(db.program_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let joined = app::enrolment::db::enrol_publicly(&db.app, "welcome-cafe", "192.0.2.9")
        .await
        .unwrap();
    assert_eq!(db.balance(&joined.external_id).await, 10);
    let descriptions: Vec<String> =
        sqlx::query_scalar("select t.description from transactions t order by t.id")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(descriptions, vec!["Welcome points", "Welcome points"]);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn a_batchs_offer_is_set_by_its_programs_managers_within_bounds() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let clerk = Till::clerk(&db).await;
    let made = create_batch(&db.app, db.program_id, manager.staff.id, "Plain", 1, None)
        .await
        .unwrap();
    let elsewhere = new_program(&db.owner, "Elsewhere").await;
    for (program, staff, batch_id, points, code) in [
        (db.program_id, clerk.staff.id, made.id, 10, "MANAGERS_ONLY"),
        (
            db.program_id,
            manager.staff.id,
            made.id,
            -1,
            "INVALID_WELCOME_POINTS",
        ),
        (
            db.program_id,
            manager.staff.id,
            made.id,
            100_001,
            "INVALID_WELCOME_POINTS",
        ),
        (
            db.program_id,
            manager.staff.id,
            Uuid::new_v4(),
            10,
            "BATCH_NOT_FOUND",
        ),
        (elsewhere, manager.staff.id, made.id, 10, "MANAGERS_ONLY"),
    ] {
        let answer: serde_json::Value =
            sqlx::query_scalar("select public.set_batch_offer($1, $2, $3, $4, null)")
                .bind(program)
                .bind(staff)
                .bind(batch_id)
                .bind(points)
                .fetch_one(&db.app)
                .await
                .unwrap();
        assert_eq!(answer["error"], code, "{points} {batch_id}");
    }
    let points: i32 =
        sqlx::query_scalar("select welcome_points from claim_code_batches where id = $1")
            .bind(made.id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(points, 0);
}
