//! A redeem never drives a balance below zero, and no acknowledged earn or redeem is lost or applied twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use app::history::db::history_page;
use app::points::db::PointsRequest;
use chrono::{DateTime, TimeDelta, Utc};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{HistoryFilter, PointsReceipt, TxType};
use server::testkit::{TestDb, Till, points_request as request};
use tokio::sync::Barrier;
use uuid::Uuid;

#[tokio::test]
async fn race_test_two_redeems_of_the_whole_balance_one_succeeds() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(100).await;
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (till, member, barrier) = (till.clone(), member.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                till.redeem(&member, 100).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let succeeded = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(succeeded, 1, "{answers:?}");
    assert!(
        answers.contains(&Err(LoyaltyError::InsufficientFunds { balance: 0 })),
        "{answers:?}"
    );
    assert_eq!(db.balance(&member).await, 0);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn insufficient_funds_says_the_balance_and_changes_nothing() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(40).await;
    let rows = db.ledger_rows().await;
    let err = till.redeem(&member, 41).await.unwrap_err();
    assert_eq!(err, LoyaltyError::InsufficientFunds { balance: 40 });
    assert_eq!(
        err.to_string(),
        "Not enough points: the balance is 40 points."
    );
    assert_eq!(db.balance(&member).await, 40);
    assert_eq!(db.ledger_rows().await, rows);
}

#[tokio::test]
async fn earn_and_redeem_record_the_balance_after_each_change_and_who_made_it() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    let earned = till.earn(&member, 120).await.unwrap();
    assert_eq!(earned.new_balance, 120);
    let redeemed = till.redeem(&member, 20).await.unwrap();
    assert_eq!(redeemed.new_balance, 100);
    let after: Vec<(i32, Option<Uuid>)> =
        sqlx::query_as("select balance_after, staff_id from transactions order by id")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    let clerk = Some(till.staff.id);
    assert_eq!(after, vec![(120, clerk), (100, clerk)]);
}

/// Many tasks of random earns and redeems on a handful of members: afterwards no balance is below zero, every
/// balance is its ledger's sum, and the ledger holds exactly the changes the tasks were told went through.
#[tokio::test]
async fn storm_of_concurrent_earns_and_redeems_keeps_every_promise() {
    const TASKS: usize = 64;
    const OPS: usize = 40;
    let db = TestDb::with_pool_size(32).await;
    let till = Till::manager(&db).await;
    let mut members = Vec::new();
    for _ in 0..5 {
        members.push(db.member(50).await);
    }
    let members = Arc::new(members);
    // The rows before the storm, by id: ids are not in order of writing on a cluster, whose nodes number from
    // ranges of their own.
    let opening: BTreeSet<i64> = sqlx::query_scalar("select id from transactions")
        .fetch_all(&db.owner)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (till, members, barrier) = (till.clone(), members.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut rng = 0x9E37_79B9_7F4A_7C15_u64
                    ^ (task as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                barrier.wait().await;
                let mut acknowledged = Vec::new();
                for _ in 0..OPS {
                    let member = &members[(next() % members.len() as u64) as usize];
                    let tx_type = if next() % 2 == 0 {
                        TxType::Earn
                    } else {
                        TxType::Redeem
                    };
                    let points = (next() % 60 + 1) as i64;
                    match till.apply(&request(member, tx_type, points)).await {
                        Ok(receipt) => acknowledged.push(receipt),
                        Err(LoyaltyError::InsufficientFunds { balance }) => {
                            assert!(balance < points)
                        }
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged: Vec<PointsReceipt> = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }

    assert!(db.invariant_violations().await.is_empty());
    let negative: i64 = sqlx::query_scalar("select count(*) from passes_master where points < 0")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(negative, 0);

    let ledger: Vec<(i64, String, i32, String, i32)> = sqlx::query_as(
        "select t.id, m.external_id, t.points, t.type, t.balance_after
           from transactions t join passes_master m on m.program_id = t.program_id and m.id = t.member_id",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let ledger: BTreeMap<i64, (String, i64, TxType, i64)> = ledger
        .into_iter()
        .filter(|(id, ..)| !opening.contains(id))
        .map(|(id, member, points, ty, after)| {
            (
                id,
                (
                    member,
                    points.into(),
                    TxType::from_sql(&ty).unwrap(),
                    after.into(),
                ),
            )
        })
        .collect();
    let seen: BTreeMap<i64, (String, i64, TxType, i64)> = acknowledged
        .iter()
        .map(|r| {
            (
                r.transaction_id,
                (r.external_id.clone(), r.points, r.tx_type, r.new_balance),
            )
        })
        .collect();
    assert_eq!(
        seen.len(),
        acknowledged.len(),
        "a transaction id was reported twice"
    );
    assert_eq!(
        seen, ledger,
        "the ledger must hold exactly the acknowledged changes"
    );
    assert!(acknowledged.iter().any(|r| r.tx_type == TxType::Redeem));
}

#[tokio::test]
async fn zero_negative_null_and_huge_amounts_are_refused_and_change_nothing() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(100).await;
    let rows = db.ledger_rows().await;
    for tx_type in [TxType::Earn, TxType::Redeem] {
        for points in [
            0,
            -1,
            -50,
            -500,
            i64::from(i32::MAX),
            i64::from(i32::MAX) + 1,
            i64::MAX,
            i64::MIN,
            1_000_001,
        ] {
            assert_eq!(
                till.apply(&request(&member, tx_type, points)).await,
                Err(LoyaltyError::InvalidAmount),
                "{tx_type:?} {points}"
            );
        }
        let answer: serde_json::Value = sqlx::query_scalar(
            "select process_membership_transaction($1, $2, null, $3, 'null amount')",
        )
        .bind(db.program_id)
        .bind(&member)
        .bind(tx_type.as_sql())
        .fetch_one(&db.app)
        .await
        .unwrap();
        assert_eq!(answer["error"], "INVALID_AMOUNT");
    }
    assert_eq!(db.balance(&member).await, 100);
    assert_eq!(db.ledger_rows().await, rows);
}

#[tokio::test]
async fn a_balance_cannot_overflow() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    sqlx::query("update passes_master set points = 2147483000 where external_id = $1")
        .bind(&member)
        .execute(&db.owner)
        .await
        .unwrap();
    assert_eq!(
        till.earn(&member, 1000).await,
        Err(LoyaltyError::BalanceLimit {
            balance: 2147483000
        })
    );
}

#[tokio::test]
async fn unknown_and_wrongly_cased_types_are_refused_and_change_nothing() {
    let db = TestDb::new().await;
    let member = db.member(100).await;
    let rows = db.ledger_rows().await;
    for ty in ["FOO", "redeem", "earn", "Earn", "", " EARN"] {
        let answer: serde_json::Value = sqlx::query_scalar(
            "select process_membership_transaction($1, $2, 10, $3, 'typed by hand')",
        )
        .bind(db.program_id)
        .bind(&member)
        .bind(ty)
        .fetch_one(&db.app)
        .await
        .unwrap();
        assert_eq!(answer["error"], "INVALID_TYPE", "{ty:?}");
    }
    assert_eq!(db.balance(&member).await, 100);
    assert_eq!(db.ledger_rows().await, rows);
}

#[tokio::test]
async fn another_programs_member_is_not_found_and_keeps_their_points() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let theirs = server::testkit::member_of(&db.owner, other, 80).await;
    for tx_type in [TxType::Earn, TxType::Redeem] {
        assert_eq!(
            till.apply(&request(&theirs, tx_type, 10)).await,
            Err(LoyaltyError::MemberNotFound)
        );
    }
    assert_eq!(db.balance(&theirs).await, 80);
}

#[tokio::test]
async fn a_replayed_request_applies_once_and_answers_as_the_first_did() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(100).await;
    let req = PointsRequest {
        idempotency_key: Some("till-3/receipt-881"),
        note: Some("coffee"),
        ..request(&member, TxType::Redeem, 30)
    };
    let first = till.apply(&req).await.unwrap();
    let again = till.apply(&req).await.unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(
        (again.transaction_id, again.new_balance),
        (first.transaction_id, 70)
    );
    assert_eq!(db.balance(&member).await, 70);
}

#[tokio::test]
async fn a_retry_is_answered_as_the_first_call_even_when_it_would_now_be_refused() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(100).await;
    let redeem_all = PointsRequest {
        idempotency_key: Some("till-1/receipt-7"),
        ..request(&member, TxType::Redeem, 100)
    };
    let first = till.apply(&redeem_all).await.unwrap();
    // The balance is now 0: the same redeem made afresh would be refused, but its retry is the first answer.
    let again = till.apply(&redeem_all).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.transaction_id, again.new_balance),
        (first.transaction_id, 0)
    );
    let afresh = till.redeem(&member, 100).await.unwrap_err();
    assert_eq!(afresh, LoyaltyError::InsufficientFunds { balance: 0 });
    // A refused call leaves its key unused: once funds arrive, the same key goes through, once.
    let refused = PointsRequest {
        idempotency_key: Some("till-1/receipt-8"),
        ..request(&member, TxType::Redeem, 10)
    };
    assert_eq!(
        till.apply(&refused).await.unwrap_err(),
        LoyaltyError::InsufficientFunds { balance: 0 }
    );
    till.earn(&member, 25).await.unwrap();
    let later = till.apply(&refused).await.unwrap();
    assert!(!later.replayed);
    assert!(till.apply(&refused).await.unwrap().replayed);
    assert_eq!(db.balance(&member).await, 15);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn a_key_reused_for_a_different_request_is_refused() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(100).await;
    let other_member = db.member(100).await;
    let key = Some("key-1");
    till.apply(&PointsRequest {
        idempotency_key: key,
        ..request(&member, TxType::Earn, 5)
    })
    .await
    .unwrap();
    for different in [
        request(&member, TxType::Earn, 6),
        request(&member, TxType::Redeem, 5),
        request(&other_member, TxType::Earn, 5),
        PointsRequest {
            note: Some("changed"),
            ..request(&member, TxType::Earn, 5)
        },
    ] {
        let err = till
            .apply(&PointsRequest {
                idempotency_key: key,
                ..different
            })
            .await
            .unwrap_err();
        assert_eq!(err, LoyaltyError::IdempotencyMismatch);
    }
    assert_eq!(db.balance(&member).await, 105);
    assert_eq!(db.balance(&other_member).await, 100);
}

#[tokio::test]
async fn thirty_two_concurrent_calls_with_one_key_apply_once() {
    const TASKS: usize = 32;
    let db = TestDb::with_pool_size(32).await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    let rows = db.ledger_rows().await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (till, member, barrier) = (till.clone(), member.clone(), barrier.clone());
            tokio::spawn(async move {
                let req = PointsRequest {
                    idempotency_key: Some("same-key"),
                    ..request(&member, TxType::Earn, 25)
                };
                barrier.wait().await;
                till.apply(&req).await.unwrap()
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for task in tasks {
        receipts.push(task.await.unwrap());
    }
    assert_eq!(receipts.iter().filter(|r| !r.replayed).count(), 1);
    assert!(
        receipts
            .iter()
            .all(|r| r.transaction_id == receipts[0].transaction_id && r.new_balance == 25)
    );
    assert_eq!(db.balance(&member).await, 25);
    assert_eq!(db.ledger_rows().await, rows + 1);
}

#[tokio::test]
async fn one_key_raced_across_two_members_applies_to_one_only() {
    const TASKS: usize = 16;
    let db = TestDb::with_pool_size(16).await;
    let till = Till::manager(&db).await;
    let members = [db.member(0).await, db.member(0).await];
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (till, member, barrier) = (till.clone(), members[i % 2].clone(), barrier.clone());
            tokio::spawn(async move {
                let req = PointsRequest {
                    idempotency_key: Some("contested"),
                    ..request(&member, TxType::Earn, 9)
                };
                barrier.wait().await;
                till.apply(&req).await
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) | Err(LoyaltyError::IdempotencyMismatch) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let total = db.balance(&members[0]).await + db.balance(&members[1]).await;
    assert_eq!(total, 9);
    assert!(db.invariant_violations().await.is_empty());
}

/// An earn with the time of its sale, as a counter terminal sends one it took offline.
fn late_earn<'a>(member: &'a str, key: &'a str, sold_at: DateTime<Utc>) -> PointsRequest<'a> {
    PointsRequest {
        idempotency_key: Some(key),
        sold_at: Some(sold_at),
        ..request(member, TxType::Earn, 40)
    }
}

#[tokio::test]
async fn a_late_earn_keeps_the_time_of_its_sale_beside_the_time_it_was_recorded() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    let sold_at = Utc::now() - TimeDelta::hours(30);
    let receipt = till
        .apply(&late_earn(&member, "till-2/offline-1", sold_at))
        .await
        .unwrap();
    let (stored, recorded): (Option<DateTime<Utc>>, DateTime<Utc>) =
        sqlx::query_as("select sold_at, created_at from transactions where id = $1")
            .bind(receipt.transaction_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(
        stored.map(|at| at.timestamp_micros()),
        Some(sold_at.timestamp_micros())
    );
    assert_eq!(recorded, receipt.created_at);

    let page = history_page(&db.app, db.program_id, &HistoryFilter::default(), None, 10)
        .await
        .unwrap();
    let entry = &page.entries[0];
    assert_eq!(entry.id, receipt.transaction_id);
    assert_eq!(entry.sold_at, stored);
    assert_eq!(
        entry.sold_apart(),
        Some(stored.unwrap().naive_utc()),
        "shown where it differs from the time recorded"
    );
    let csv = app::history::db::csv_record(entry);
    assert_eq!(
        DateTime::parse_from_rfc3339(&csv[9]).unwrap(),
        stored.unwrap()
    );

    let now = till.earn(&member, 5).await.unwrap();
    let detail = app::members::db::member_detail(&db.app, db.program_id, &member, 5)
        .await
        .unwrap();
    let newest = &detail.ledger[0];
    assert_eq!(newest.id, now.transaction_id);
    assert_eq!((newest.sold_at, newest.sold_apart()), (None, None));
    assert_eq!(detail.ledger[1].sold_at, stored);
}

#[tokio::test]
async fn a_sale_in_the_future_or_older_than_the_programs_limit_is_refused_and_changes_nothing() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(100).await;
    let rows = db.ledger_rows().await;
    let refused = [
        (
            Utc::now() + TimeDelta::minutes(10),
            LoyaltyError::SaleInTheFuture,
        ),
        (
            Utc::now() - TimeDelta::days(7) - TimeDelta::minutes(1),
            LoyaltyError::SaleTooOld { limit_days: 7 },
        ),
    ];
    for (n, (sold_at, refusal)) in refused.into_iter().enumerate() {
        let key = format!("refused-{n}");
        let err = till
            .apply(&late_earn(&member, &key, sold_at))
            .await
            .unwrap_err();
        assert_eq!(err, refusal);
    }
    assert_eq!(
        LoyaltyError::SaleTooOld { limit_days: 7 }.to_string(),
        "This sale is more than 7 days old: too late to earn points for it."
    );
    assert_eq!(db.balance(&member).await, 100);
    assert_eq!(db.ledger_rows().await, rows);

    // A till's clock a little ahead, and a sale within the program's limit, go through.
    let ahead = Utc::now() + TimeDelta::minutes(3);
    till.apply(&late_earn(&member, "ahead", ahead))
        .await
        .unwrap();
    let six_days = Utc::now() - TimeDelta::days(6);
    till.apply(&late_earn(&member, "six-days", six_days))
        .await
        .unwrap();
    // The program sets the limit.
    let eight_days = Utc::now() - TimeDelta::days(8);
    sqlx::query("update programs set late_sale_days = 10 where id = $1")
        .bind(db.program_id)
        .execute(&db.owner)
        .await
        .unwrap();
    till.apply(&late_earn(&member, "eight-days", eight_days))
        .await
        .unwrap();
    assert_eq!(db.balance(&member).await, 220);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn a_late_earn_sent_again_is_answered_as_the_first_even_once_past_the_limit() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    let earn = late_earn(&member, "till-4/offline-9", Utc::now() - TimeDelta::days(3));
    let first = till.apply(&earn).await.unwrap();
    sqlx::query("update programs set late_sale_days = 1 where id = $1")
        .bind(db.program_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let again = till.apply(&earn).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.transaction_id, again.new_balance),
        (first.transaction_id, 40)
    );
    // The same sale under a new key is a new earn, and now too old.
    assert_eq!(
        till.apply(&PointsRequest {
            idempotency_key: Some("till-4/offline-10"),
            ..earn
        })
        .await,
        Err(LoyaltyError::SaleTooOld { limit_days: 1 })
    );
    assert_eq!(db.balance(&member).await, 40);
}

/// A queue of late earns sent by two terminals at once (a journal copied to a second till, say): each key
/// applies once, with the time of its sale.
#[tokio::test]
async fn a_queue_replayed_twice_at_once_applies_each_earn_once() {
    const EARNS: usize = 20;
    let db = TestDb::with_pool_size(8).await;
    let tills = Till::managers(&db, 2).await;
    let member = db.member(0).await;
    let sold_at = Utc::now() - TimeDelta::hours(2);
    let keys: Arc<Vec<String>> = Arc::new((0..EARNS).map(|n| format!("till-7/{n}")).collect());
    let barrier = Arc::new(Barrier::new(tills.len()));
    let tasks: Vec<_> = tills
        .into_iter()
        .map(|till| {
            let (member, keys, barrier) = (member.clone(), keys.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut receipts = Vec::new();
                for key in keys.iter() {
                    let receipt = till.apply(&late_earn(&member, key, sold_at)).await.unwrap();
                    receipts.push(receipt);
                }
                receipts
            })
        })
        .collect();
    let mut applied = BTreeMap::new();
    for task in tasks {
        for receipt in task.await.unwrap() {
            if !receipt.replayed {
                assert!(applied.insert(receipt.transaction_id, ()).is_none());
            }
        }
    }
    assert_eq!(applied.len(), EARNS, "each key applied exactly once");
    assert_eq!(db.balance(&member).await, 40 * EARNS as i64);
    let late: i64 =
        sqlx::query_scalar("select count(*) from transactions where sold_at is not null")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(late, EARNS as i64);
    assert!(db.invariant_violations().await.is_empty());
}
