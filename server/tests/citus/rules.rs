//! The program's rules, its rewards, its postcards' welcome offers and its points expiry through the coordinator:
//! a sale earned by the rules and the best promotion, a reward's stock under tills redeeming it at once, a
//! postcard's welcome points when tills race for it, and an expiry run, each answered as on one PostgreSQL, with
//! the rows they write in the program's own shards on the program's worker.

use std::sync::Arc;

use app::batches::db::{BatchOffer, create_batch_with_offer};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::ScanOutcome;
use server::testkit::{TestDb, Till};
use tokio::sync::Barrier;
use uuid::Uuid;

use super::{ONE_AT_A_TIME, cluster_workers, coordinator, on_worker, placement};

/// The rows of the program's shard of `table` that `condition` picks, counted on the program's worker itself
/// (the shard table, not the distributed one): proof that they are where the program's other rows are.
async fn rows_on_the_programs_worker(db: &TestDb, table: &str, condition: &str) -> i64 {
    let at = placement(&db.owner, db.program_id).await;
    let (shard, port): (String, i32) = sqlx::query_as(
        "select shard_name::text, nodeport from citus_shards
          where shardid = get_shard_id_for_distribution_column($1::regclass, $2)",
    )
    .bind(table)
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        port,
        i32::from(at.port),
        "{table}'s shard of the program is on the program's worker"
    );
    let worker = cluster_workers(db)
        .await
        .into_iter()
        .find(|w| w.port == at.port)
        .unwrap();
    let there = on_worker(db, &worker).await;
    let count = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {shard} where program_id = $1 and ({condition})"
    )))
    .bind(db.program_id)
    .fetch_one(&there)
    .await
    .unwrap();
    there.close().await;
    count
}

/// The ledger of one member of the database's program, oldest first: (type, points, balance after, description).
async fn ledger_of(db: &TestDb, external_id: &str) -> Vec<(String, i32, i32, Option<String>)> {
    sqlx::query_as(
        "select t.type, t.points, t.balance_after, t.description
           from public.transactions t
           join public.passes_master m on m.program_id = t.program_id and m.id = t.member_id
          where t.program_id = $1 and m.external_id = $2
          order by t.created_at, t.id",
    )
    .bind(db.program_id)
    .bind(external_id)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_sale_earns_by_the_rules_and_the_best_promotion_once_in_the_programs_shards() {
    let Some(_) = coordinator("sale") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::clerk(&db).await;
    let member = db.member(0).await;

    // 2 points per 1.00 EUR, at most 100 a sale; a promotion of x1.5 and a better one of x2, both always on.
    let rules: serde_json::Value =
        sqlx::query_scalar("select public.set_program_rules($1, $2, 'EUR', 2, 2, 100, 100, 0, 0)")
            .bind(db.program_id)
            .bind(manager.staff.id)
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(rules["success"], true, "{rules}");
    let mut promotions = Vec::new();
    for (name, percent) in [("Half again", 150i64), ("Double", 200)] {
        let saved: serde_json::Value = sqlx::query_scalar(
            "select public.save_promotion($1, $2, null, $3, $4, null, null, null, null, null)",
        )
        .bind(db.program_id)
        .bind(manager.staff.id)
        .bind(name)
        .bind(percent)
        .fetch_one(&db.app)
        .await
        .unwrap();
        assert_eq!(saved["success"], true, "{saved}");
        promotions.push(saved["promotion_id"].as_i64().unwrap());
    }

    let receipt = till
        .sale(&member, "12.50", Some("sale-1"), None)
        .await
        .unwrap();
    assert_eq!((receipt.points, receipt.new_balance), (50, 50));
    assert!(!receipt.replayed);
    assert_eq!(
        receipt.rule.as_deref(),
        Some("12.50 EUR -> 50 points, 2 points per 1.00 EUR, x2 Double")
    );
    let recorded: (i64, String, Option<i64>) = sqlx::query_as(
        "select sale_amount_minor, currency, promotion_id from public.ledger_details
          where program_id = $1 and transaction_id = $2",
    )
    .bind(db.program_id)
    .bind(receipt.transaction_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(recorded, (1250, "EUR".to_owned(), Some(promotions[1])));

    // The same sale again: answered as the first, and the rules changed since count for nothing.
    let rules: serde_json::Value =
        sqlx::query_scalar("select public.set_program_rules($1, $2, 'EUR', 2, 1, 100, null, 0, 0)")
            .bind(db.program_id)
            .bind(manager.staff.id)
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(rules["success"], true, "{rules}");
    let again = till
        .sale(&member, "12.50", Some("sale-1"), None)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.transaction_id, again.points, again.new_balance),
        (receipt.transaction_id, 50, 50)
    );
    assert_eq!(
        till.sale(&member, "13.00", Some("sale-1"), None).await,
        Err(LoyaltyError::IdempotencyMismatch)
    );
    // Under the new rules, with the best promotion retired: x1.5.
    let retired: serde_json::Value =
        sqlx::query_scalar("select public.retire_promotion($1, $2, $3)")
            .bind(db.program_id)
            .bind(manager.staff.id)
            .bind(promotions[1])
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(retired["success"], true, "{retired}");
    let second = till.sale(&member, "4.00", None, None).await.unwrap();
    assert_eq!((second.points, second.new_balance), (6, 56));

    assert_eq!(
        ledger_of(&db, &member)
            .await
            .into_iter()
            .map(|(kind, points, after, _)| (kind, points, after))
            .collect::<Vec<_>>(),
        vec![("EARN".to_owned(), 50, 50), ("EARN".to_owned(), 6, 56)]
    );
    let details = format!(
        "transaction_id in ({}, {})",
        receipt.transaction_id, second.transaction_id
    );
    assert_eq!(
        rows_on_the_programs_worker(&db, "public.ledger_details", &details).await,
        2
    );
    assert_eq!(
        rows_on_the_programs_worker(&db, "public.promotions", "retired_at is not null").await,
        1
    );
    assert_eq!(db.balance(&member).await, 56);
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_rewards_stock_of_five_holds_when_twenty_members_redeem_it_at_once() {
    let Some(_) = coordinator("reward stock") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::with_pool_size(16).await;
    let manager = Till::manager(&db).await;
    let coffee = manager
        .add_reward("Coffee", 30, Some(5), None)
        .await
        .unwrap();
    let tills = Till::clerks(&db, 8).await;
    let mut members = Vec::new();
    for _ in 0..20 {
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
    let granted: Vec<(usize, i64)> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_ref().ok().map(|r| (i, r.transaction_id)))
        .collect();
    assert_eq!(granted.len(), 5, "{answers:?}");
    for answer in &answers {
        match answer {
            Ok(receipt) => {
                assert_eq!((receipt.points, receipt.new_balance), (30, 70));
                assert_eq!(receipt.reward.as_deref(), Some("Coffee"));
            }
            Err(refusal) => assert_eq!(
                refusal,
                &LoyaltyError::OutOfStock {
                    reward: "Coffee".into()
                }
            ),
        }
    }

    // A granted redeem retried once the stock is gone: the first answer again, nothing taken twice.
    let (first, transaction_id) = granted[0];
    let retried = tills[0]
        .redeem_reward(&members[first], coffee, Some(&format!("coffee-{first}")))
        .await
        .unwrap();
    assert!(retried.replayed);
    assert_eq!(
        (retried.transaction_id, retried.new_balance),
        (transaction_id, 70)
    );

    let stock: Option<i32> =
        sqlx::query_scalar("select stock from public.rewards where program_id = $1 and id = $2")
            .bind(db.program_id)
            .bind(coffee)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(stock, Some(0));
    let redeemed: Vec<i64> = sqlx::query_scalar(
        "select t.id from public.ledger_details d
           join public.transactions t on t.program_id = d.program_id and t.id = d.transaction_id
          where d.program_id = $1 and d.reward_id = $2 and t.type = 'REDEEM'
          order by t.id",
    )
    .bind(db.program_id)
    .bind(coffee)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut granted_ids: Vec<i64> = granted.iter().map(|(_, id)| *id).collect();
    granted_ids.sort_unstable();
    assert_eq!(redeemed, granted_ids);
    assert_eq!(
        rows_on_the_programs_worker(
            &db,
            "public.ledger_details",
            &format!("reward_id = {coffee}")
        )
        .await,
        5
    );
    assert_eq!(
        rows_on_the_programs_worker(&db, "public.rewards", "stock = 0").await,
        1
    );
    let spent: i64 = sqlx::query_scalar(
        "select count(*) from public.passes_master where program_id = $1 and points = 70",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(spent, 5);
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_postcards_welcome_points_are_earned_once_when_tills_race_for_it() {
    let Some(_) = coordinator("welcome") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::with_pool_size(16).await;
    // The wallet's webhook channel is on: every balance change queues a delivery, from the pass's own node.
    let channels: serde_json::Value =
        sqlx::query_scalar("select public.set_wallet_channels(array['webhook'])")
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(channels["success"], true, "{channels}");
    let manager = Till::manager(&db).await;
    let made = create_batch_with_offer(
        &db.app,
        db.program_id,
        manager.staff.id,
        "Spring",
        1,
        None,
        &BatchOffer {
            welcome_points: 50,
            last_day: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(made.welcome_points, 50);
    let code: String = sqlx::query_scalar(
        "select code from public.claim_codes where program_id = $1 and batch_id = $2",
    )
    .bind(db.program_id)
    .bind(made.id)
    .fetch_one(&db.owner)
    .await
    .unwrap();

    let tills = Till::clerks(&db, 8).await;
    let barrier = Arc::new(Barrier::new(24));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (till, code, barrier) = (
                tills[i % tills.len()].clone(),
                code.clone(),
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
    for answer in &answers {
        assert!(
            matches!(
                answer,
                Ok(ScanOutcome::Claimed { .. }) | Err(LoyaltyError::AlreadyClaimed { .. })
            ),
            "{answer:?}"
        );
    }
    let member = claimed[0].external_id.clone();
    assert_eq!(
        ledger_of(&db, &member).await,
        vec![(
            "EARN".to_owned(),
            50,
            50,
            Some("Welcome offer: Spring".to_owned())
        )]
    );
    assert_eq!(db.balance(&member).await, 50);

    // The pass's changes, written by the triggers on the pass's shard: its first balance, then the gift, each
    // with a delivery queued for the webhook; and the claimed pass in the outbox.
    let (pass_id, version): (Uuid, i64) = sqlx::query_as(
        "select id, pass_version from public.passes_master where program_id = $1 and external_id = $2",
    )
    .bind(db.program_id)
    .bind(&member)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let changes: Vec<(i64, i32, i64)> = sqlx::query_as(
        "select c.pass_version, c.balance, count(d.change_id)
           from public.pass_changes c
           left join public.wallet_deliveries d
             on d.program_id = c.program_id and d.change_id = c.id and d.channel = 'webhook'
          where c.program_id = $1 and c.pass_id = $2
          group by c.id, c.pass_version, c.balance
          order by c.pass_version",
    )
    .bind(db.program_id)
    .bind(pass_id)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(changes.last(), Some(&(version, 50, 1)), "{changes:?}");
    assert!(
        changes.iter().all(|(_, _, deliveries)| *deliveries == 1),
        "{changes:?}"
    );
    let pass = format!("pass_id = '{pass_id}'");
    assert_eq!(
        rows_on_the_programs_worker(&db, "public.pass_changes", &pass).await,
        changes.len() as i64
    );
    assert_eq!(
        rows_on_the_programs_worker(&db, "public.wallet_outbox", &pass).await,
        1
    );
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

#[tokio::test]
async fn an_expiry_run_expires_exactly_the_unspent_points_past_their_date_and_a_second_run_nothing()
{
    let Some(_) = coordinator("expiry") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    // Points typed by hand set the ledger up: a manager's adjustments.
    let till = Till::manager(&db).await;
    let answer: serde_json::Value =
        sqlx::query_scalar("select public.set_points_expiry($1, $2, 12)")
            .bind(db.program_id)
            .bind(manager.staff.id)
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(answer["success"], true, "{answer}");

    // Partly spent: 40 earned 13 months ago, 30 a month ago, 10 spent: 30 of the old points are due.
    let partly = db.member(0).await;
    let old = till.earn(&partly, 40).await.unwrap();
    db.backdate(old.transaction_id, 13).await;
    let recent = till.earn(&partly, 30).await.unwrap();
    db.backdate(recent.transaction_id, 1).await;
    till.redeem(&partly, 10).await.unwrap();
    // Spent before their date: nothing due.
    let spent = db.member(0).await;
    let old = till.earn(&spent, 20).await.unwrap();
    db.backdate(old.transaction_id, 13).await;
    till.redeem(&spent, 25).await.unwrap_err();
    till.redeem(&spent, 20).await.unwrap();
    // Earned today: nothing due.
    let fresh = db.member(0).await;
    till.earn(&fresh, 15).await.unwrap();
    // Many members, one step of two at a time, so that the run takes several steps.
    let mut unaffected = Vec::new();
    for _ in 0..5 {
        unaffected.push(db.member(7).await);
    }

    let ledger = db.ledger_rows().await;
    let expired = app::rules::db::run_expiry(&db.app, db.program_id)
        .await
        .unwrap();
    assert_eq!(expired, 30);
    assert_eq!(db.ledger_rows().await, ledger + 1);
    assert_eq!(
        ledger_of(&db, &partly)
            .await
            .last()
            .map(|(kind, points, after, _)| (kind.clone(), *points, *after)),
        Some(("EXPIRE".to_owned(), 30, 30))
    );
    for (member, balance) in [(&partly, 30), (&spent, 0), (&fresh, 15)] {
        assert_eq!(db.balance(member).await, balance, "{member}");
    }
    for member in &unaffected {
        assert_eq!(db.balance(member).await, 7, "{member}");
    }
    assert_eq!(
        rows_on_the_programs_worker(&db, "public.transactions", "type = 'EXPIRE'").await,
        1
    );

    // Step by step with two members a step, as a run stopped and started again: nothing more is due.
    let mut after: Option<Uuid> = None;
    let mut steps = 0;
    loop {
        let (last, points): (Option<Uuid>, i64) =
            sqlx::query_as("select last_member, expired from public.expire_points_step($1, $2, 2)")
                .bind(db.program_id)
                .bind(after)
                .fetch_one(&db.app)
                .await
                .unwrap();
        assert_eq!(points, 0);
        steps += 1;
        match last {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    assert!(steps >= 4, "{steps} steps over 8 members");
    assert_eq!(db.ledger_rows().await, ledger + 1);
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}
