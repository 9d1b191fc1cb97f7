//! Withdrawing a batch: its unclaimed codes stop working, its claimed ones stay claimed, even mid-race.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use app::batches::db as batches;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::ScanOutcome;
use server::testkit::{TestDb, Till};
use tokio::sync::Barrier;

use crate::{batch_of, codes_of, manager_of, today};

#[tokio::test]
async fn voiding_withdraws_unclaimed_codes_and_keeps_claimed_ones() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, 10).await;
    let codes = codes_of(&db, &batch).await;
    let till = Till::clerk(&db).await;
    for code in &codes[..4] {
        till.claim(code).await;
    }

    let voided = batches::void_batch(&db.app, db.program_id, manager, batch.id)
        .await
        .unwrap();
    assert_eq!((voided.claimed, voided.unclaimed, voided.voided), (4, 0, 6));
    let voided_at = voided.voided_at.expect("the batch says when it was voided");
    assert_eq!(voided.voided_by.as_deref(), Some("Test manager"));

    let err = till.scan(&codes[9]).await.unwrap_err();
    assert_eq!(
        err,
        LoyaltyError::CodeVoided {
            voided_at: voided_at.fixed_offset()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "This postcard was withdrawn on {} and is no longer valid.",
            today()
        )
    );
    assert_eq!(err.code(), "CODE_VOIDED");
    assert!(matches!(
        till.scan(&codes[0]).await,
        Err(LoyaltyError::AlreadyClaimed { .. })
    ));
    let (claimed, withdrawn): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where claimed_at is not null and pass_id is not null),
                count(*) filter (where voided_at = $2)
           from claim_codes where batch_id = $1",
    )
    .bind(batch.id)
    .bind(voided_at)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let passes: i64 = sqlx::query_scalar("select count(*) from passes_master")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!((claimed, withdrawn, passes), (4, 6, 4));

    assert_eq!(
        batches::void_batch(&db.app, db.program_id, manager, batch.id).await,
        Err(LoyaltyError::BatchAlreadyVoided {
            voided_at: voided_at.fixed_offset()
        })
    );
    let listed = batches::list_batches(&db.app, db.program_id, 50)
        .await
        .unwrap();
    assert_eq!(listed, vec![voided]);
}

#[tokio::test]
async fn a_code_is_claimed_or_withdrawn_never_both_when_claims_race_the_void() {
    const CODES: usize = 120;
    const VOID_AFTER: usize = CODES / 4;
    let db = TestDb::with_pool_size(40).await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, CODES as i64).await;
    let codes = codes_of(&db, &batch).await;
    // A clerk a postcard: one clerk's scans would queue behind one another, and a clerk who missed once would
    // be throttled once the program is over its ceiling of misses.
    let tills = Till::clerks(&db, CODES).await;
    let barrier = Arc::new(Barrier::new(CODES + 1));
    let answered = Arc::new(AtomicUsize::new(0));
    let claims: Vec<_> = codes
        .iter()
        .enumerate()
        .map(|(n, code)| {
            let (till, code) = (tills[n].clone(), code.clone());
            let (barrier, answered) = (barrier.clone(), answered.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let answer = till.scan(&code).await;
                answered.fetch_add(1, Ordering::SeqCst);
                answer
            })
        })
        .collect();
    // The void goes in once some claims are through, while the rest are still queued or running.
    let void = {
        let (pool, program_id, barrier, answered) = (
            db.app.clone(),
            db.program_id,
            barrier.clone(),
            answered.clone(),
        );
        tokio::spawn(async move {
            barrier.wait().await;
            while answered.load(Ordering::SeqCst) < VOID_AFTER {
                tokio::task::yield_now().await;
            }
            batches::void_batch(&pool, program_id, manager, batch.id).await
        })
    };
    let mut claimed = HashSet::new();
    let mut refused = 0;
    for (code, task) in codes.iter().zip(claims) {
        match task.await.unwrap() {
            Ok(ScanOutcome::Claimed { code: burned, .. }) => {
                assert_eq!(&burned, code);
                claimed.insert(burned);
            }
            Err(LoyaltyError::CodeVoided { .. }) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let voided = void.await.unwrap().unwrap();
    eprintln!("{} claimed, {refused} found withdrawn", claimed.len());
    assert_eq!(claimed.len() + refused, CODES);
    assert!(
        claimed.len() >= VOID_AFTER,
        "the claims answered before the void stay claimed"
    );
    assert_eq!(voided.claimed, claimed.len() as i64);
    assert_eq!(voided.voided + voided.claimed, CODES as i64);
    let rows: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "select code, claimed_at is not null, pass_id is not null, voided_at is not null
           from claim_codes where batch_id = $1",
    )
    .bind(batch.id)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    for (code, is_claimed, has_pass, is_voided) in rows {
        assert_eq!(is_claimed, claimed.contains(&code), "{code}");
        assert_eq!(has_pass, is_claimed, "{code}");
        assert_ne!(
            is_claimed, is_voided,
            "{code} must be exactly one of claimed and withdrawn"
        );
    }
    // Scanned again at the same tills, the race's misses forgotten first: the throttle has tests of its own.
    sqlx::query("delete from scan_misses")
        .execute(&db.owner)
        .await
        .unwrap();
    for (n, code) in codes.iter().enumerate() {
        if !claimed.contains(code) {
            assert!(matches!(
                tills[n].scan(code).await,
                Err(LoyaltyError::CodeVoided { .. })
            ));
        }
    }
}

#[tokio::test]
async fn another_programs_manager_cannot_void_list_or_print_a_batch() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, 5).await;
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let their_manager = manager_of(&db, other).await;

    assert_eq!(
        batches::void_batch(&db.app, other, their_manager, batch.id).await,
        Err(LoyaltyError::BatchNotFound)
    );
    // Naming our program with their manager is refused by the database too.
    assert_eq!(
        batches::void_batch(&db.app, db.program_id, their_manager, batch.id).await,
        Err(LoyaltyError::ManagersOnly)
    );
    assert_eq!(batches::list_batches(&db.app, other, 50).await, Ok(vec![]));
    assert_eq!(
        batches::find_batch(&db.app, other, batch.id).await,
        Err(LoyaltyError::BatchNotFound)
    );
    assert_eq!(
        batches::printable_postcards(&db.app, other, batch.id, None, 100)
            .await
            .unwrap(),
        vec![]
    );
    let still = batches::find_batch(&db.app, db.program_id, batch.id)
        .await
        .unwrap();
    assert_eq!((still.unclaimed, still.voided_at), (5, None));
}
