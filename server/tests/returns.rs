//! Returns at the counter: all or part of an earn or a redeem reversed, linked to its row; never more than the
//! row, even when returned from many tills at once; a clerk their own entries within the program's time,
//! managers any; spent points recorded as a shortfall, the balance never negative.

use std::sync::Arc;

use loyalty_core::LoyaltyError;
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestDb, TestServer, Till, member_of, new_program, refused};
use tokio::sync::Barrier;

/// The member's pass with a sale of `amount` recorded by `till`: its row's id.
async fn sold(till: &Till, member: &str, amount: &str) -> i64 {
    till.sale(member, amount, None, None)
        .await
        .unwrap()
        .transaction_id
}

#[tokio::test]
async fn a_sale_is_returned_in_parts_never_more_than_it_earned() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(0).await;
    let sale = sold(&clerk, &member, "20").await;
    let first = clerk.reverse(sale, 5, None).await.unwrap();
    assert_eq!(
        (
            first.points,
            first.shortfall,
            first.new_balance,
            first.remaining
        ),
        (5, 0, 15, 15)
    );
    assert_eq!(
        first.describe(),
        format!("Returned 5 of 5 points of #{sale}: the balance is now 15.")
    );
    assert_eq!(
        clerk.reverse(sale, 16, None).await,
        Err(LoyaltyError::ReversalTooLarge { remaining: 15 })
    );
    assert_eq!(clerk.reverse(sale, 15, None).await.unwrap().remaining, 0);
    assert_eq!(
        clerk.reverse(sale, 1, None).await,
        Err(LoyaltyError::ReversalTooLarge { remaining: 0 })
    );
    assert_eq!(db.balance(&member).await, 0);
    // Each return is a row of its own, linked to the sale.
    let linked: Vec<(i64, i32)> = sqlx::query_as(
        "select r.original_id, t.points from reversals r
           join transactions t on t.program_id = r.program_id and t.id = r.transaction_id
          order by r.id",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(linked, [(sale, 5), (sale, 15)]);
    // A return is not returned in turn.
    let return_row = first.transaction_id.unwrap();
    assert_eq!(
        clerk.reverse(return_row, 1, None).await,
        Err(LoyaltyError::CannotReverse)
    );
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
    // The month's numbers: the sale earned 20, and its returns took all 20 back.
    let months = app::numbers::db::months(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!((months[0].earned, months[0].redeemed), (0, 0));
}

#[tokio::test]
async fn points_already_spent_are_a_shortfall_and_the_balance_stops_at_zero() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(0).await;
    let sale = sold(&clerk, &member, "20").await;
    let reward = manager.add_reward("Cake", 15, None, None).await.unwrap();
    let redeemed = clerk.redeem_reward(&member, reward, None).await.unwrap();
    assert_eq!(redeemed.new_balance, 5);

    let back = clerk.reverse(sale, 20, None).await.unwrap();
    assert_eq!(
        (
            back.points,
            back.shortfall,
            back.new_balance,
            back.remaining
        ),
        (5, 15, 0, 0)
    );
    assert!(
        back.describe()
            .ends_with("15 points were already spent and could not be taken back.")
    );
    let recorded: (i32, i32) = sqlx::query_as("select requested, shortfall from reversals")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(recorded, (20, 15));

    // With nothing left at all, the return is still recorded, with no ledger row.
    let member2 = db.member(0).await;
    let sale2 = sold(&clerk, &member2, "10").await;
    clerk
        .redeem_reward(
            &member2,
            manager.add_reward("Tea", 10, None, None).await.unwrap(),
            None,
        )
        .await
        .unwrap();
    let nothing = clerk.reverse(sale2, 10, None).await.unwrap();
    assert_eq!(
        (nothing.transaction_id, nothing.points, nothing.shortfall),
        (None, 0, 10)
    );
    assert_eq!(db.balance(&member2).await, 0);

    // A reward that could not be handed over: its points go back.
    let given_back = clerk
        .reverse(redeemed.transaction_id, 15, None)
        .await
        .unwrap();
    assert_eq!((given_back.points, given_back.new_balance), (15, 15));
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_clerk_returns_their_own_entries_within_the_programs_time_and_managers_any() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let other = Till::clerk(&db).await;
    let manager = Till::manager(&db).await;
    let member = db.member(0).await;
    let mine = sold(&clerk, &member, "10").await;
    let theirs = sold(&other, &member, "10").await;
    assert_eq!(
        clerk.reverse(theirs, 1, None).await,
        Err(LoyaltyError::ReversalNotAllowed { minutes: 30 })
    );
    assert!(clerk.reverse(mine, 1, None).await.is_ok());
    // Older than the program's time: the clerk may no longer, a manager still may.
    db.backdate(mine, 1).await;
    let err = clerk.reverse(mine, 1, None).await.unwrap_err();
    assert_eq!(err, LoyaltyError::ReversalNotAllowed { minutes: 30 });
    assert_eq!(
        err.to_string(),
        "You can return your own entries within 30 minutes: ask a manager to return this one."
    );
    assert!(manager.reverse(mine, 1, None).await.is_ok());
    assert!(manager.reverse(theirs, 2, None).await.is_ok());
    // Adjustments are a manager's to void, not to return.
    let adjusted = manager.earn(&member, 5).await.unwrap();
    assert_eq!(
        manager.reverse(adjusted.transaction_id, 5, None).await,
        Err(LoyaltyError::CannotReverse)
    );
}

#[tokio::test]
async fn tills_returning_one_sale_at_once_never_return_more_than_it() {
    const TILLS: usize = 10;
    let db = TestDb::with_pool_size(TILLS as u32 + 4).await;
    let member = db.member(100).await;
    let clerk = Till::clerk(&db).await;
    let sale = sold(&clerk, &member, "20").await;
    let managers = Till::managers(&db, TILLS).await;
    let barrier = Arc::new(Barrier::new(TILLS));
    let tasks: Vec<_> = managers
        .into_iter()
        .map(|till| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                till.reverse(sale, 3, None).await
            })
        })
        .collect();
    let (mut returned, mut refused_) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => returned += 1,
            Err(LoyaltyError::ReversalTooLarge { remaining }) => {
                assert_eq!(remaining, 2);
                refused_ += 1
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        (returned, refused_),
        (6, TILLS - 6),
        "6 returns of 3 fit in 20"
    );
    let requested: i64 = sqlx::query_scalar("select sum(requested) from reversals")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(requested, 18);
    assert_eq!(db.balance(&member).await, 120 - 18);
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_return_sent_twice_under_one_key_applies_once() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(0).await;
    let sale = sold(&clerk, &member, "20").await;
    let first = clerk.reverse(sale, 4, Some("return-1")).await.unwrap();
    let again = clerk.reverse(sale, 4, Some("return-1")).await.unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(again.transaction_id, first.transaction_id);
    assert_eq!(db.balance(&member).await, 16);
    assert_eq!(
        clerk.reverse(sale, 5, Some("return-1")).await,
        Err(LoyaltyError::IdempotencyMismatch)
    );
}

#[tokio::test]
async fn over_http_a_return_answers_and_another_programs_row_is_not_found() {
    let server = TestServer::start().await;
    let db = &server.db;
    let member = db.member(0).await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let response = clerk
        .change(
            "earn_sale",
            &[
                ("external_id", &member),
                ("amount", "12"),
                ("idempotency_key", "sale-1"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let receipt: loyalty_core::wire::PointsReceipt = response.json().await.unwrap();
    let id = receipt.transaction_id.to_string();
    let response = clerk
        .change(
            "reverse",
            &[
                ("transaction_id", &id),
                ("points", "12"),
                ("idempotency_key", "ret-1"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let done: loyalty_core::wire::Reversal = response.json().await.unwrap();
    assert_eq!(done.new_balance, 0);
    let (status, err) = refused(
        clerk
            .change(
                "reverse",
                &[
                    ("transaction_id", &id),
                    ("points", "1"),
                    ("idempotency_key", "ret-2"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (
            StatusCode::CONFLICT,
            LoyaltyError::ReversalTooLarge { remaining: 0 }
        )
    );

    let other = new_program(&db.owner, "Another Café").await;
    let theirs = member_of(&db.owner, other, 9).await;
    let their_row: i64 = sqlx::query_scalar(
        "select t.id from transactions t join passes_master m on m.program_id = t.program_id and m.id = t.member_id
          where m.external_id = $1",
    )
    .bind(&theirs)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let (status, err) = refused(
        clerk
            .change(
                "reverse",
                &[
                    ("transaction_id", &their_row.to_string()),
                    ("points", "1"),
                    ("idempotency_key", "ret-3"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (StatusCode::NOT_FOUND, LoyaltyError::TransactionNotFound)
    );
    assert_eq!(db.balance(&theirs).await, 9);
}
