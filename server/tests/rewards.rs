//! The rewards catalog: a reward's stock is never oversold, a member's limit per day holds under concurrent
//! redeems, a retry is answered as the first call was, and every refusal changes nothing.

use std::sync::Arc;

use loyalty_core::LoyaltyError;
use server::testkit::{TestDb, Till, member_of, new_program};
use tokio::sync::Barrier;
use uuid::Uuid;

async fn stock(db: &TestDb, reward_id: i64) -> Option<i32> {
    sqlx::query_scalar("select stock from rewards where id = $1")
        .bind(reward_id)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn reward_redeems(db: &TestDb, reward_id: i64) -> i64 {
    sqlx::query_scalar(
        "select count(*) from ledger_details d
           join transactions t on t.program_id = d.program_id and t.id = d.transaction_id
          where d.reward_id = $1 and t.type = 'REDEEM' and t.description = 'Coffee'",
    )
    .bind(reward_id)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn race_test_stock_of_five_fifty_members_at_once_exactly_five_get_it() {
    let db = TestDb::with_pool_size(16).await;
    let manager = Till::manager(&db).await;
    let coffee = manager
        .add_reward("Coffee", 30, Some(5), None)
        .await
        .unwrap();
    let tills = Till::clerks(&db, 8).await;
    let mut members = Vec::new();
    for _ in 0..50 {
        members.push(db.member(100).await);
    }
    let barrier = Arc::new(Barrier::new(members.len()));
    let tasks: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let (till, member, barrier) = (
                tills[i % tills.len()].clone(),
                member.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                till.redeem_reward(&member, coffee, Some(&format!("coffee-{i}")))
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let granted: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    assert_eq!(granted.len(), 5, "{answers:?}");
    for answer in answers.iter().filter(|a| a.is_err()) {
        assert_eq!(
            answer,
            &Err(LoyaltyError::OutOfStock {
                reward: "Coffee".into()
            })
        );
    }
    for receipt in &granted {
        assert_eq!(receipt.points, 30);
        assert_eq!(receipt.new_balance, 70);
        assert_eq!(receipt.reward.as_deref(), Some("Coffee"));
    }
    assert_eq!(stock(&db, coffee).await, Some(0));
    assert_eq!(reward_redeems(&db, coffee).await, 5);
    let spent: i64 = sqlx::query_scalar("select count(*) from passes_master where points = 70")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(spent, 5);
    assert!(db.invariant_violations().await.is_empty());
}

/// A reward with no stock holds no lock of its own: while one redeem of it is held on its member's row, a
/// redeem of the same reward by another member goes through.
#[tokio::test]
async fn a_reward_without_a_stock_is_not_a_queue() {
    let db = TestDb::with_pool_size(4).await;
    let manager = Till::manager(&db).await;
    let tea = manager.add_reward("Tea", 10, None, None).await.unwrap();
    let till = Till::clerk(&db).await;
    let (held, free) = (db.member(100).await, db.member(100).await);
    let mut lock = db.owner.begin().await.unwrap();
    sqlx::query(
        "select 1 from passes_master where program_id = $1 and external_id = $2 for update",
    )
    .bind(db.program_id)
    .bind(&held)
    .execute(&mut *lock)
    .await
    .unwrap();
    let waiting = {
        let (till, held) = (till.clone(), held.clone());
        tokio::spawn(async move { till.redeem_reward(&held, tea, Some("held-1")).await })
    };
    // The first redeem waits on its member's row, inside the function, before the second is sent.
    while db.app_sessions_waiting_for_a_lock().await != 1 {
        tokio::task::yield_now().await;
    }
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        till.redeem_reward(&free, tea, Some("free-1")),
    )
    .await
    .expect("the second redeem does not wait for the first")
    .unwrap();
    assert_eq!(other.new_balance, 90);
    lock.commit().await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().new_balance, 90);
    assert_eq!(stock(&db, tea).await, None);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn race_test_a_limit_of_one_a_day_ten_redeems_of_one_member_at_once_one_goes_through() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let coffee = manager
        .add_reward("Coffee", 10, None, Some(1))
        .await
        .unwrap();
    let tills = Till::clerks(&db, 4).await;
    let member = db.member(1000).await;
    let barrier = Arc::new(Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (till, member, barrier) = (
                tills[i % tills.len()].clone(),
                member.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                till.redeem_reward(&member, coffee, Some(&format!("limit-{i}")))
                    .await
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
    let refusal = LoyaltyError::RewardLimitReached {
        reward: "Coffee".into(),
        limit: 1,
    };
    assert_eq!(
        answers
            .iter()
            .filter(|a| **a == Err(refusal.clone()))
            .count(),
        9
    );
    assert_eq!(
        refusal.to_string(),
        "This member has already had Coffee once today."
    );
    assert_eq!(db.balance(&member).await, 990);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn a_retry_is_answered_as_the_first_call_even_once_the_stock_is_gone() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::manager(&db).await;
    let coffee = manager
        .add_reward("Coffee", 25, Some(1), None)
        .await
        .unwrap();
    let member = db.member(100).await;
    let first = till
        .redeem_reward(&member, coffee, Some("k-1"))
        .await
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(stock(&db, coffee).await, Some(0));
    let rows = db.ledger_rows().await;

    let again = till
        .redeem_reward(&member, coffee, Some("k-1"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.transaction_id, first.transaction_id);
    assert_eq!(again.new_balance, 75);
    assert_eq!(db.ledger_rows().await, rows);
    assert_eq!(db.balance(&member).await, 75);

    let other = db.member(100).await;
    assert_eq!(
        till.redeem_reward(&other, coffee, Some("k-2")).await,
        Err(LoyaltyError::OutOfStock {
            reward: "Coffee".into()
        })
    );
    // The same key for something else is refused, not replayed as the reward.
    till.earn(&member, 5).await.unwrap();
    let cake = manager.add_reward("Cake", 10, None, None).await.unwrap();
    assert_eq!(
        till.redeem_reward(&member, cake, Some("k-1")).await,
        Err(LoyaltyError::IdempotencyMismatch)
    );
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn refused_redeems_say_why_and_change_nothing() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::clerk(&db).await;
    let coffee = manager
        .add_reward("Coffee", 50, Some(3), None)
        .await
        .unwrap();
    let poor = db.member(49).await;
    let rows = db.ledger_rows().await;

    assert_eq!(
        till.redeem_reward(&poor, coffee, None).await,
        Err(LoyaltyError::InsufficientFunds { balance: 49 })
    );
    assert_eq!(
        till.redeem_reward("MBR-NOSUCHPASS", coffee, None).await,
        Err(LoyaltyError::MemberNotFound)
    );
    assert_eq!(
        till.redeem_reward(&poor, coffee + 1000, None).await,
        Err(LoyaltyError::RewardNotFound)
    );
    assert_eq!(stock(&db, coffee).await, Some(3));

    // A reward of another program is not there for this one, and this one's members are not there for it.
    let elsewhere = new_program(&db.owner, "Elsewhere").await;
    let stranger = member_of(&db.owner, elsewhere, 500).await;
    assert_eq!(
        till.redeem_reward(&stranger, coffee, None).await,
        Err(LoyaltyError::MemberNotFound)
    );
    let foreign: i64 = sqlx::query_scalar(
        "insert into rewards (program_id, name, points_cost) values ($1, 'Theirs', 1) returning id",
    )
    .bind(elsewhere)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        till.redeem_reward(&poor, foreign, None).await,
        Err(LoyaltyError::RewardNotFound)
    );

    sqlx::query("select retire_reward($1, $2, $3)")
        .bind(db.program_id)
        .bind(manager.staff.id)
        .bind(coffee)
        .execute(&db.owner)
        .await
        .unwrap();
    let rich = db.member(500).await;
    let rows_before_retired = db.ledger_rows().await;
    assert_eq!(
        till.redeem_reward(&rich, coffee, None).await,
        Err(LoyaltyError::RewardRetired)
    );
    assert_eq!(db.ledger_rows().await, rows_before_retired);
    assert_eq!(rows_before_retired, rows + 2);
    assert_eq!(db.balance(&poor).await, 49);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn the_catalog_is_kept_by_managers_and_bad_values_are_refused_by_the_database() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let clerk = Till::clerk(&db).await;
    assert_eq!(
        clerk.add_reward("Coffee", 10, None, None).await,
        Err(LoyaltyError::ManagersOnly)
    );
    for (name, cost, stock, limit, refusal) in [
        ("", 10, None, None, LoyaltyError::InvalidRewardName),
        ("   ", 10, None, None, LoyaltyError::InvalidRewardName),
        (
            &"x".repeat(101),
            10,
            None,
            None,
            LoyaltyError::InvalidRewardName,
        ),
        ("Coffee", 0, None, None, LoyaltyError::InvalidRewardCost),
        ("Coffee", -5, None, None, LoyaltyError::InvalidRewardCost),
        (
            "Coffee",
            1_000_001,
            None,
            None,
            LoyaltyError::InvalidRewardCost,
        ),
        (
            "Coffee",
            10,
            Some(-1),
            None,
            LoyaltyError::InvalidRewardStock,
        ),
        (
            "Coffee",
            10,
            None,
            Some(0),
            LoyaltyError::InvalidRewardLimit,
        ),
        (
            "Coffee",
            10,
            None,
            Some(101),
            LoyaltyError::InvalidRewardLimit,
        ),
    ] {
        assert_eq!(
            manager.add_reward(name, cost, stock, limit).await,
            Err(refusal),
            "{name:?} {cost} {stock:?} {limit:?}"
        );
    }
    let none: i64 = sqlx::query_scalar("select count(*) from rewards")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(none, 0);

    let coffee = manager
        .add_reward("  Coffee ", 10, Some(2), None)
        .await
        .unwrap();
    let listed = app::rewards::db::rewards(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, coffee);
    assert_eq!(listed[0].name, "Coffee");
    assert_eq!(listed[0].stock, Some(2));
    let other_program = app::rewards::db::rewards(&db.app, Uuid::new_v4())
        .await
        .unwrap();
    assert!(other_program.is_empty());
}
