//! Guessing codes at the counter: misses are throttled, per clerk and per program, and real postcards always
//! go through.

use std::sync::Arc;

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{Role, ScanOutcome};
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestDb, TestServer, Till, refused};
use tokio::sync::Barrier;

use crate::{batch_of, codes_of, made_over_http, manager_of, unissued};

#[tokio::test]
async fn misses_are_throttled_with_growing_waits() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let real = db.postcard().await;
    for n in 0..5 {
        assert_eq!(
            clerk.scan(&unissued(n)).await,
            Err(LoyaltyError::InvalidCode)
        );
    }
    let first_wait = match clerk.scan(&unissued(5)).await {
        Err(LoyaltyError::Throttled { retry_after_secs }) => retry_after_secs,
        other => panic!("expected THROTTLED, got {other:?}"),
    };
    assert!((1..=4).contains(&first_wait), "{first_wait}");
    let err = clerk.scan(&real).await.unwrap_err();
    assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
    assert!(err.to_string().starts_with("Too many attempts: wait "));
    // A throttled attempt neither counts nor burns anything.
    let misses = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from scan_misses")
            .fetch_one(&db.owner)
            .await
            .unwrap()
    };
    assert_eq!(misses().await, 5);

    // The wait has passed: the next miss is answered, and the wait after it is longer.
    let mut waits = vec![first_wait];
    for n in 6..9 {
        let waited = *waits.last().unwrap();
        // Through UTC's clock, which Citus can send to the shards: it refuses a change of a time zone's.
        sqlx::query(
            "update scan_misses set at = ((at at time zone 'UTC') - make_interval(secs => $1)) at time zone 'UTC'",
        )
            .bind(waited as f64 + 1.0)
            .execute(&db.owner)
            .await
            .unwrap();
        assert_eq!(
            clerk.scan(&unissued(n)).await,
            Err(LoyaltyError::InvalidCode)
        );
        match clerk.scan(&unissued(n + 10)).await {
            Err(LoyaltyError::Throttled { retry_after_secs }) => waits.push(retry_after_secs),
            other => panic!("expected THROTTLED, got {other:?}"),
        }
    }
    eprintln!("waits after 5, 6, 7 and 8 misses: {waits:?} seconds");
    assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
    assert_eq!(misses().await, 8);
    let unclaimed: bool =
        sqlx::query_scalar("select claimed_at is null from claim_codes where code = $1")
            .bind(&real)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert!(unclaimed);
}

#[tokio::test]
async fn a_burst_of_concurrent_guesses_gets_only_the_free_misses() {
    const GUESSES: usize = 60;
    let db = TestDb::with_pool_size(30).await;
    let clerk = Till::clerk(&db).await;
    let barrier = Arc::new(Barrier::new(GUESSES));
    let tasks: Vec<_> = (0..GUESSES)
        .map(|n| {
            let (clerk, barrier) = (clerk.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                clerk.scan(&unissued(n)).await
            })
        })
        .collect();
    let (mut invalid, mut throttled) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Err(LoyaltyError::InvalidCode) => invalid += 1,
            Err(LoyaltyError::Throttled { .. }) => throttled += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((invalid, throttled), (5, GUESSES - 5));
}

#[tokio::test]
async fn a_clerk_scanning_real_postcards_is_never_throttled_while_others_guess() {
    let db = TestDb::new().await;
    let guesser = Till::clerk(&db).await;
    let clerk = Till::clerk(&db).await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, 40).await;
    // The program is over its ceiling of misses from other staff members.
    for _ in 0..12 {
        let (other, _) = db.staff(db.program_id, Role::Clerk).await;
        sqlx::query(
            "insert into scan_misses (program_id, staff_id, at)
             select $1, $2, clock_timestamp() from generate_series(1, 5)",
        )
        .bind(db.program_id)
        .bind(other)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    let mut guesses = Vec::new();
    for (n, code) in codes_of(&db, &batch).await.iter().enumerate() {
        guesses.push(guesser.scan(&unissued(n)).await);
        let scanned = clerk.scan(code).await;
        assert!(
            matches!(scanned, Ok(ScanOutcome::Claimed { .. })),
            "real postcard {n}: {scanned:?}"
        );
    }
    // The guesser's first miss is answered; after it the program's ceiling holds them.
    assert_eq!(guesses[0], Err(LoyaltyError::InvalidCode));
    assert!(
        guesses[1..]
            .iter()
            .all(|g| matches!(g, Err(LoyaltyError::Throttled { .. }))),
        "{guesses:?}"
    );
    // A clerk who mistyped once while the program is over its ceiling waits too.
    assert_eq!(
        clerk.scan(&unissued(99)).await,
        Err(LoyaltyError::InvalidCode)
    );
    assert!(matches!(
        clerk.scan(&db.postcard().await).await,
        Err(LoyaltyError::Throttled { .. })
    ));
}

#[tokio::test]
async fn throttling_in_one_program_does_not_reach_another() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let their_clerk = Till::clerk_of(&db, other).await;
    for n in 0..5 {
        assert_eq!(
            clerk.scan(&unissued(n)).await,
            Err(LoyaltyError::InvalidCode)
        );
    }
    assert!(matches!(
        clerk.scan(&unissued(5)).await,
        Err(LoyaltyError::Throttled { .. })
    ));
    assert_eq!(
        their_clerk.scan(&unissued(5)).await,
        Err(LoyaltyError::InvalidCode)
    );
    let theirs = server::testkit::postcard_of(&db.owner, other).await;
    assert!(matches!(
        their_clerk.scan(&theirs).await,
        Ok(ScanOutcome::Claimed { .. })
    ));
}

#[tokio::test]
async fn the_scan_api_answers_429_after_the_free_misses_and_withdrawn_codes_count() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let batch = made_over_http(&manager, "Spring", "4").await;
    let codes = codes_of(&server.db, &batch).await;
    manager
        .change("void_batch", &[("batch_id", &batch.id.to_string())])
        .await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    for code in &codes {
        let (status, err) = refused(clerk.change("scan", &[("code", code)]).await).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(matches!(err, LoyaltyError::CodeVoided { .. }), "{err:?}");
    }
    let (status, err) = refused(clerk.change("scan", &[("code", &unissued(1))]).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::UNPROCESSABLE_ENTITY, LoyaltyError::InvalidCode)
    );
    let (status, err) = refused(clerk.change("scan", &[("code", &unissued(2))]).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
    // Typos are caught before the database and never count (avoiding them costs a guesser nothing), so even
    // a throttled clerk is told at once.
    let mut typo = unissued(3).into_bytes();
    typo[6] = if typo[6] == b'A' { b'B' } else { b'A' };
    let (_, err) = refused(
        clerk
            .change("scan", &[("code", &String::from_utf8(typo).unwrap())])
            .await,
    )
    .await;
    assert_eq!(err, LoyaltyError::MistypedCode);
    let misses: i64 = sqlx::query_scalar("select count(*) from scan_misses")
        .fetch_one(&server.db.owner)
        .await
        .unwrap();
    assert_eq!(misses, 5);
}
