//! The wallets through the coordinator: the claimed passes' notices and the balance changes' deliveries of
//! programs on both workers go out once each from workers racing for them, and Apple Wallet's "changed since"
//! tells a phone exactly the passes that changed, whichever worker holds them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use server::testkit::{TestDb, member_of, postcard_of};
use server::wallet::devices::{self, Channel};
use server::wallet::{Backoff, Webhook, deliver_next, outbox};
use tokio::sync::Barrier;
use uuid::Uuid;

use super::{ONE_AT_A_TIME, cluster_workers, coordinator, program_per_worker};

/// Notices taken, by idempotency key: how often each.
type Taken = Arc<Mutex<BTreeMap<String, usize>>>;

async fn receiver() -> (Taken, String) {
    async fn take(State(taken): State<Taken>, headers: HeaderMap) -> StatusCode {
        let key = headers["idempotency-key"].to_str().unwrap().to_owned();
        *taken.lock().unwrap().entry(key).or_default() += 1;
        StatusCode::OK
    }
    let taken = Taken::default();
    let app = axum::Router::new()
        .route("/", axum::routing::post(take))
        .with_state(taken.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (taken, format!("http://{addr}/"))
}

async fn earn(db: &TestDb, program_id: Uuid, external_id: &str, points: i64) {
    let answer: serde_json::Value = sqlx::query_scalar(
        "select public.process_membership_transaction($1, $2, $3, 'EARN', null)",
    )
    .bind(program_id)
    .bind(external_id)
    .bind(points)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
}

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

#[tokio::test]
async fn notices_of_programs_on_both_workers_go_out_once_each_from_racing_workers() {
    let Some(_) = coordinator("wallet deliveries") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::with_pool_size(12).await;
    let programs = program_per_worker(&db, &cluster_workers(&db).await).await;
    devices::set_channels(&db.app, &[Channel::Webhook])
        .await
        .unwrap();
    for &program in &programs {
        for _ in 0..3 {
            let code = postcard_of(&db.owner, program).await;
            let claimed: serde_json::Value =
                sqlx::query_scalar("select public.process_claim_attempt($1, $2)")
                    .bind(&code)
                    .bind(program)
                    .fetch_one(&db.app)
                    .await
                    .unwrap();
            assert_eq!(claimed["success"], true, "{claimed}");
        }
        let member = member_of(&db.owner, program, 0).await;
        earn(&db, program, &member, 5).await;
    }
    let notices = count(&db, "select count(*) from wallet_outbox").await;
    let changes = count(&db, "select count(*) from wallet_deliveries").await;
    assert_eq!(notices, 6, "a notice for each claim");
    assert!(changes >= 4, "{changes} deliveries");

    let (claims_taken, claims_url) = receiver().await;
    let (changes_taken, changes_url) = receiver().await;
    let backoff = Backoff {
        first: Duration::from_millis(5),
        max: Duration::from_millis(40),
    };
    let racers = 4;
    let barrier = Arc::new(Barrier::new(racers));
    let mut handles = Vec::new();
    for _ in 0..racers {
        let (pool, barrier) = (db.app.clone(), barrier.clone());
        let claims = Webhook::new(&claims_url, Duration::from_secs(10), None).unwrap();
        let changes = Webhook::new(&changes_url, Duration::from_secs(10), None).unwrap();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            while deliver_next(&pool, &claims, &backoff)
                .await
                .unwrap()
                .is_some()
            {}
            while outbox::deliver_next_change(&pool, &changes, &backoff)
                .await
                .unwrap()
                .is_some()
            {}
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    for (what, taken, expected) in [
        ("claim notices", &claims_taken, notices),
        ("balance changes", &changes_taken, changes),
    ] {
        let taken = taken.lock().unwrap();
        assert_eq!(taken.len(), usize::try_from(expected).unwrap(), "{what}");
        assert!(taken.values().all(|times| *times == 1), "{what}: {taken:?}");
    }
    assert_eq!(
        count(
            &db,
            "select count(*) from wallet_outbox where delivered_at is null"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from wallet_deliveries where delivered_at is null"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_phone_is_told_exactly_the_passes_that_changed_whichever_worker_holds_them() {
    let Some(_) = coordinator("wallet changed since") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let programs = program_per_worker(&db, &cluster_workers(&db).await).await;
    let phone = "citus-phone";
    let push = "ef56".repeat(8);
    let mut members = Vec::new();
    for &program in &programs {
        let member = member_of(&db.owner, program, 0).await;
        let pass = devices::pass_of_member(&db.app, program, &member)
            .await
            .unwrap();
        devices::register_device(&db.app, pass.pass_id, &pass.wallet_token, phone, &push)
            .await
            .unwrap();
        members.push((program, member, pass.pass_id));
    }
    let mut every = members.iter().map(|m| m.2).collect::<Vec<_>>();
    every.sort();
    let first = devices::passes_changed_since(&db.app, phone, None)
        .await
        .unwrap();
    assert_eq!(first.serial_numbers, every);
    let tag = first.last_updated.unwrap();
    let none = devices::passes_changed_since(&db.app, phone, Some(&tag))
        .await
        .unwrap();
    assert!(none.serial_numbers.is_empty(), "{none:?}");

    // A change on each worker in turn is told, and only once.
    let mut tag = tag;
    for (program, member, pass_id) in &members {
        earn(&db, *program, member, 3).await;
        let told = devices::passes_changed_since(&db.app, phone, Some(&tag))
            .await
            .unwrap();
        assert_eq!(told.serial_numbers, [*pass_id]);
        tag = told.last_updated.unwrap();
        let again = devices::passes_changed_since(&db.app, phone, Some(&tag))
            .await
            .unwrap();
        assert!(again.serial_numbers.is_empty(), "{again:?}");
    }
}
