//! Points expiry: redeems use the oldest points first, a run expires exactly the unspent points past their date,
//! a second run writes nothing, a run stopped half way and started again expires nothing twice, and a storm of
//! redeems beside a run never drives a balance below zero nor breaks the ledger.

use std::sync::Arc;

use loyalty_core::LoyaltyError;
use server::testkit::{TestDb, Till};
use tokio::sync::Barrier;
use uuid::Uuid;

/// Points expire 12 months after they were earned in this program.
async fn twelve_months(db: &TestDb, manager: &Till) {
    let answer: serde_json::Value =
        sqlx::query_scalar("select public.set_points_expiry($1, $2, 12)")
            .bind(db.program_id)
            .bind(manager.staff.id)
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
}

/// A member with an earn of `old` points 13 months ago and of `new` points a month ago.
async fn member_with_old_and_new(db: &TestDb, till: &Till, old: i64, new: i64) -> String {
    let member = db.member(0).await;
    let first = till.earn(&member, old).await.unwrap();
    db.backdate(first.transaction_id, 13).await;
    let second = till.earn(&member, new).await.unwrap();
    db.backdate(second.transaction_id, 1).await;
    member
}

/// A whole expiry run, step by step as the server runs it: the points expired.
async fn run(db: &TestDb, step: i32) -> i64 {
    let mut after: Option<Uuid> = None;
    let mut expired = 0;
    loop {
        let (last, points): (Option<Uuid>, i64) = sqlx::query_as(
            "select last_member, expired from public.expire_points_step($1, $2, $3)",
        )
        .bind(db.program_id)
        .bind(after)
        .bind(step)
        .fetch_one(&db.app)
        .await
        .unwrap();
        expired += points;
        match last {
            Some(last) => after = Some(last),
            None => return expired,
        }
    }
}

async fn expired_rows(db: &TestDb, member: &str) -> Vec<i32> {
    sqlx::query_scalar(
        "select t.points from transactions t join passes_master m on m.program_id = t.program_id and m.id = t.member_id
          where m.external_id = $1 and t.type = 'EXPIRE' order by t.id",
    )
    .bind(member)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn next_expiry(db: &TestDb, member: &str) -> (i64, Option<i64>, Option<chrono::NaiveDate>) {
    sqlx::query_as(
        "select e.due, e.next_points, e.next_day
           from passes_master m, public.member_expiry(m.program_id, m.id) e where m.external_id = $1",
    )
    .bind(member)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_run_expires_the_unspent_points_past_their_date_oldest_first_and_once() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::manager(&db).await;
    // Off by default: nothing expires.
    let member = member_with_old_and_new(&db, &till, 100, 50).await;
    till.redeem(&member, 30).await.unwrap();
    assert_eq!(run(&db, 100).await, 0);
    assert_eq!(db.balance(&member).await, 120);

    twelve_months(&db, &manager).await;
    let (due, next_points, next_day) = next_expiry(&db, &member).await;
    assert_eq!((due, next_points), (70, Some(50)));
    assert!(next_day.is_some());
    // The 30 redeemed came out of the old 100: 70 of them are left past their date.
    assert_eq!(run(&db, 100).await, 70);
    assert_eq!(db.balance(&member).await, 50);
    assert_eq!(expired_rows(&db, &member).await, vec![70]);
    assert_eq!(run(&db, 100).await, 0);
    assert_eq!(expired_rows(&db, &member).await, vec![70]);
    assert_eq!(next_expiry(&db, &member).await.0, 0);

    // Spending more than the old points leaves nothing of them to expire.
    let spender = member_with_old_and_new(&db, &till, 100, 50).await;
    till.redeem(&spender, 120).await.unwrap();
    assert_eq!(run(&db, 100).await, 0);
    assert_eq!(db.balance(&spender).await, 30);
    assert_eq!(next_expiry(&db, &spender).await.1, Some(30));

    // A voided old earn and its void count for nothing.
    let voided = member_with_old_and_new(&db, &till, 100, 50).await;
    let old_id: i64 = sqlx::query_scalar(
        "select t.id from transactions t join passes_master m on m.program_id = t.program_id and m.id = t.member_id
          where m.external_id = $1 order by t.created_at limit 1",
    )
    .bind(&voided)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    app::history::db::void(
        &db.app,
        db.program_id,
        Some(manager.staff.id),
        old_id,
        "entered twice",
    )
    .await
    .unwrap();
    assert_eq!(run(&db, 100).await, 0);
    assert_eq!(db.balance(&voided).await, 50);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn a_run_stopped_half_way_and_started_again_expires_nothing_twice() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::manager(&db).await;
    twelve_months(&db, &manager).await;
    let mut members = Vec::new();
    for _ in 0..25 {
        members.push(member_with_old_and_new(&db, &till, 40, 10).await);
    }
    // The first step of a run in steps of 10, then the server is gone: a new run starts from the beginning.
    let (_, first): (Option<Uuid>, i64) =
        sqlx::query_as("select last_member, expired from public.expire_points_step($1, null, 10)")
            .bind(db.program_id)
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(first, 400);
    assert_eq!(run(&db, 10).await, 25 * 40 - 400);
    for member in &members {
        assert_eq!(expired_rows(&db, member).await, vec![40]);
        assert_eq!(db.balance(member).await, 10);
    }
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn race_test_a_storm_of_redeems_beside_an_expiry_run_never_goes_below_zero() {
    let db = TestDb::with_pool_size(16).await;
    let manager = Till::manager(&db).await;
    let tills = Till::managers(&db, 6).await;
    twelve_months(&db, &manager).await;
    let mut members = Vec::new();
    for _ in 0..30 {
        members.push(member_with_old_and_new(&db, &tills[0], 100, 50).await);
    }
    let barrier = Arc::new(Barrier::new(members.len() + 1));
    let mut tasks = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let (till, member, barrier) = (
            tills[i % tills.len()].clone(),
            member.clone(),
            barrier.clone(),
        );
        // 0 to 145 points: some fit only before the run, some never.
        let points = (i as i64 * 5) % 150;
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            if points == 0 {
                return (member, 0);
            }
            match till.redeem(&member, points).await {
                Ok(_) => (member, points),
                Err(LoyaltyError::InsufficientFunds { .. }) => (member, 0),
                Err(other) => panic!("redeem {points}: {other}"),
            }
        }));
    }
    let runner = {
        let (db_app, program, barrier) = (db.app.clone(), db.program_id, barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            let mut after: Option<Uuid> = None;
            loop {
                let (last, _): (Option<Uuid>, i64) = sqlx::query_as(
                    "select last_member, expired from public.expire_points_step($1, $2, 4)",
                )
                .bind(program)
                .bind(after)
                .fetch_one(&db_app)
                .await
                .unwrap();
                match last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        })
    };
    let mut redeemed = Vec::new();
    for task in tasks {
        redeemed.push(task.await.unwrap());
    }
    runner.await.unwrap();
    // Whatever the order, a second run finds what the first missed: every old point is spent or expired once.
    run(&db, 100).await;
    for (member, points) in redeemed {
        let expired: i64 = expired_rows(&db, &member)
            .await
            .iter()
            .map(|p| i64::from(*p))
            .sum();
        let balance = db.balance(&member).await;
        assert!(balance >= 0);
        assert_eq!(
            balance,
            150 - points - expired,
            "{member}: redeemed {points}, expired {expired}"
        );
        assert!(
            expired + points >= 100,
            "{member}: old points left unexpired"
        );
        assert!(expired <= 100, "{member}: expired more than its old points");
        assert_eq!(next_expiry(&db, &member).await.0, 0);
    }
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn the_programs_numbers_add_up_to_its_ledger() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::manager(&db).await;
    let coffee = manager.add_reward("Coffee", 10, None, None).await.unwrap();
    let member = member_with_old_and_new(&db, &till, 100, 50).await;
    till.redeem_reward(&member, coffee, None).await.unwrap();
    db.member(7).await;
    let numbers = app::numbers::db::numbers(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!(numbers.outstanding, 140 + 7);
    assert_eq!(numbers.expiring, None);
    assert_eq!(numbers.rewards, vec![("Coffee".to_owned(), 1)]);
    let sum =
        |of: fn(&app::numbers::MonthPoints) -> i64| numbers.months.iter().map(of).sum::<i64>();
    // The opening balance is an earn; the 150 typed by hand are a manager's adjustments.
    assert_eq!(
        (sum(|m| m.earned), sum(|m| m.redeemed), sum(|m| m.adjusted)),
        (7, 10, 150)
    );

    twelve_months(&db, &manager).await;
    let numbers = app::numbers::db::numbers(&db.app, db.program_id)
        .await
        .unwrap();
    // 90 of the old 100 are past their date now; the 50 of a month ago expire in 11 months.
    assert_eq!(numbers.expiring, Some([0, 0, 0]));
    assert_eq!(run(&db, 100).await, 90);
    let numbers = app::numbers::db::numbers(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!(numbers.outstanding, 50 + 7);
    assert_eq!(numbers.months.iter().map(|m| m.expired).sum::<i64>(), 90);
}
