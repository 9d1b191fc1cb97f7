//! Ordering batches: one call makes them whole, sizes and names are checked, a form sent twice makes one.

use std::collections::HashSet;
use std::sync::Arc;

use app::batches::BatchSummary;
use app::batches::db as batches;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::Role;
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestDb, TestServer, Till, refused};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::{batch_of, codes_of, manager_of};

#[tokio::test]
async fn a_batch_of_100000_codes_is_made_in_one_call() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let started = std::time::Instant::now();
    let batch = batch_of(&db, db.program_id, manager, 100_000).await;
    eprintln!("a batch of 100,000 codes took {:?}", started.elapsed());

    assert_eq!(
        (batch.size, batch.claimed, batch.unclaimed, batch.voided),
        (100_000, 0, 100_000, 0)
    );
    let codes = codes_of(&db, &batch).await;
    assert_eq!(codes.len(), 100_000);
    let unique: HashSet<&String> = codes.iter().collect();
    assert_eq!(unique.len(), 100_000);
    for code in &codes {
        assert_eq!(
            loyalty_core::parse_scan(code),
            Ok(loyalty_core::ScanCode::Claim(code.clone())),
            "{code}"
        );
    }
    // now() is the transaction's start: one timestamp for the batch and every code means one transaction.
    let (stamps, stamp_is_batch): (i64, bool) = sqlx::query_as(
        "select count(distinct c.created_at), bool_and(c.created_at = b.created_at)
           from claim_codes c join claim_code_batches b on b.program_id = c.program_id and b.id = c.batch_id
          where b.id = $1",
    )
    .bind(batch.id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((stamps, stamp_is_batch), (1, true));
}

#[tokio::test]
async fn sizes_and_names_are_checked_and_clerks_are_refused_by_the_database() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let (clerk, _) = db.staff(db.program_id, Role::Clerk).await;
    for (name, size, refusal) in [
        ("ok", 0, LoyaltyError::InvalidBatchSize),
        ("ok", 100_001, LoyaltyError::InvalidBatchSize),
        ("ok", -5, LoyaltyError::InvalidBatchSize),
        ("  ", 10, LoyaltyError::InvalidBatchName),
        (&"x".repeat(101)[..], 10, LoyaltyError::InvalidBatchName),
    ] {
        let err = batches::create_batch(&db.app, db.program_id, manager, name, size, None)
            .await
            .unwrap_err();
        assert_eq!(err, refusal, "{name:?} {size}");
    }
    assert_eq!(
        batches::create_batch(&db.app, db.program_id, clerk, "Mine", 10, None).await,
        Err(LoyaltyError::ManagersOnly)
    );
    let codes: i64 = sqlx::query_scalar("select count(*) from claim_codes")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(codes, 0, "a refused batch writes nothing");
}

#[tokio::test]
async fn the_list_counts_claimed_and_unclaimed_codes_per_batch() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let first = batch_of(&db, db.program_id, manager, 10).await;
    let second = batch_of(&db, db.program_id, manager, 5).await;
    let till = Till::clerk(&db).await;
    for code in codes_of(&db, &first).await.iter().take(3) {
        till.claim(code).await;
    }
    till.claim(&codes_of(&db, &second).await[0]).await;
    let list = batches::list_batches(&db.app, db.program_id, 50)
        .await
        .unwrap();
    let counts: Vec<(Uuid, i64, i64, i64)> = list
        .iter()
        .map(|b| (b.id, b.claimed, b.unclaimed, b.voided))
        .collect();
    // Newest first.
    assert_eq!(counts, vec![(second.id, 1, 4, 0), (first.id, 3, 7, 0)]);
    assert!(list.iter().all(|b| b.created_by == "Test manager"));
}

/// Batches and codes in the program, and the codes whose batch holds fewer or more than its size.
async fn batches_and_codes(db: &TestDb, program_id: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from claim_code_batches where program_id = $1),
                (select count(*) from claim_codes where program_id = $1),
                (select count(*) from claim_code_batches b
                  where b.program_id = $1
                    and b.size <> (select count(*) from claim_codes c
                                    where c.program_id = b.program_id and c.batch_id = b.id))",
    )
    .bind(program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_order_sent_many_times_at_once_with_one_key_makes_one_batch() {
    const TASKS: usize = 12;
    let db = TestDb::with_pool_size(TASKS as u32).await;
    let manager = manager_of(&db, db.program_id).await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (app, program_id, barrier) = (db.app.clone(), db.program_id, barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            batches::create_batch(&app, program_id, manager, "Autumn", 500, Some("form-1")).await
        }));
    }
    let mut made = HashSet::new();
    for task in tasks {
        made.insert(task.await.unwrap().unwrap().id);
    }
    assert_eq!(made.len(), 1, "every call answered with the same batch");
    assert_eq!(batches_and_codes(&db, db.program_id).await, (1, 500, 0));

    // The same key later, for the same order: the same batch again. For another order: refused.
    let again = batches::create_batch(
        &db.app,
        db.program_id,
        manager,
        " Autumn ",
        500,
        Some("form-1"),
    )
    .await
    .unwrap();
    assert!(made.contains(&again.id));
    for (name, size) in [("Winter", 500), ("Autumn", 499)] {
        assert_eq!(
            batches::create_batch(&db.app, db.program_id, manager, name, size, Some("form-1"))
                .await,
            Err(LoyaltyError::IdempotencyMismatch)
        );
    }
    assert_eq!(batches_and_codes(&db, db.program_id).await, (1, 500, 0));

    // A key is the program's own; no key orders a batch every time.
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let theirs = manager_of(&db, other).await;
    let their_batch = batches::create_batch(&db.app, other, theirs, "Autumn", 5, Some("form-1"))
        .await
        .unwrap();
    assert!(!made.contains(&their_batch.id));
    for _ in 0..2 {
        batches::create_batch(&db.app, db.program_id, manager, "Autumn", 5, None)
            .await
            .unwrap();
    }
    assert_eq!(batches_and_codes(&db, db.program_id).await, (3, 510, 0));
    assert_eq!(batches_and_codes(&db, other).await, (1, 5, 0));
    let too_long = batches::create_batch(
        &db.app,
        db.program_id,
        manager,
        "Autumn",
        5,
        Some(&"k".repeat(201)),
    )
    .await
    .unwrap_err();
    assert_eq!(too_long, LoyaltyError::InvalidRequestKey);
    assert_eq!(
        too_long.to_string(),
        "This form is out of date: reload the page and try again."
    );
    let reused = batches::create_batch(
        &db.app,
        db.program_id,
        manager,
        "Winter",
        500,
        Some("form-1"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        reused.to_string(),
        "This request was already used for a different transaction. Start it again."
    );
}

#[tokio::test]
async fn the_batches_page_gives_each_order_form_its_own_key_and_a_form_sent_twice_makes_one_batch()
{
    use app::batches::BatchesPageData;
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let page: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    let next: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(page.form_key, next.form_key);
    assert_eq!(page.batches, vec![]);

    let order = [
        ("name", "Spring"),
        ("size", "4"),
        ("request_key", page.form_key.as_str()),
    ];
    let first: BatchSummary = manager
        .change("create_batch", &order)
        .await
        .json()
        .await
        .unwrap();
    let second: BatchSummary = manager
        .change("create_batch", &order)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first, second);
    let page: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.batches, vec![first.clone()]);

    // The same form changed and sent again is refused; the next form orders the next batch.
    assert_eq!(
        refused(
            manager
                .change(
                    "create_batch",
                    &[
                        ("name", "Spring"),
                        ("size", "5"),
                        ("request_key", order[2].1)
                    ],
                )
                .await
        )
        .await,
        (StatusCode::CONFLICT, LoyaltyError::IdempotencyMismatch)
    );
    let later: BatchSummary = manager
        .change(
            "create_batch",
            &[
                ("name", "Spring"),
                ("size", "5"),
                ("request_key", next.form_key.as_str()),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(later.id, first.id);
    let page: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.batches, vec![later, first]);
}
