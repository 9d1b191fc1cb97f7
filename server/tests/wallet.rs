//! The wallet outbox: claims are announced to a real HTTP wallet service on loopback, through outages, exactly
//! once each, and never at the same time by two workers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use loyalty_core::LoyaltyError;
use server::testkit::{ApiClient, TestDb, TestServer, TestTls, Till};
use server::tls::TlsListener;
use server::wallet::{Attempt, Backoff, Webhook, WorkerSettings, deliver_next};
use tokio::sync::Barrier;

/// A wallet service that answers 500 to its first `fail_first` requests and while it is `down`, and otherwise
/// takes every one, counting what it took by idempotency key and noticing any key sent twice at once.
#[derive(Default)]
struct WalletService {
    fail_first: usize,
    down: AtomicBool,
    requests: AtomicUsize,
    failed: AtomicUsize,
    /// Taken (2xx) announcements per idempotency key, with the body of the first.
    taken: Mutex<HashMap<String, (usize, serde_json::Value)>>,
    in_flight: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
}

async fn receive(
    State(service): State<Arc<WalletService>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !service.in_flight.lock().unwrap().insert(key.clone()) {
        service.overlaps.fetch_add(1, Ordering::SeqCst);
    }
    // Give any other sender of the same key every chance to arrive while this one is in flight.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    let n = service.requests.fetch_add(1, Ordering::SeqCst);
    let status = if n < service.fail_first || service.down.load(Ordering::SeqCst) {
        service.failed.fetch_add(1, Ordering::SeqCst);
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        let mut taken = service.taken.lock().unwrap();
        taken.entry(key.clone()).or_insert((0, body)).0 += 1;
        StatusCode::OK
    };
    service.in_flight.lock().unwrap().remove(&key);
    status
}

/// Serves the wallet service on 127.0.0.1 (over HTTPS with `tls`'s certificate, if given) and gives its webhook
/// URL.
async fn serve_wallet_service(
    fail_first: usize,
    tls: Option<&TestTls>,
) -> (Arc<WalletService>, String) {
    let service = Arc::new(WalletService {
        fail_first,
        ..Default::default()
    });
    let app = axum::Router::new()
        .route("/passes", axum::routing::post(receive))
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = match tls {
        None => {
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{addr}/passes")
        }
        Some(tls) => {
            let listener = TlsListener::new(listener, tls.server_config()).unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("https://{addr}/passes")
        }
    };
    (service, url)
}

async fn wallet_service(fail_first: usize) -> (Arc<WalletService>, String) {
    serve_wallet_service(fail_first, None).await
}

fn webhook(url: &str) -> Webhook {
    Webhook::new(url, Duration::from_secs(10), None).unwrap()
}

/// Quick retries, so a test's outage passes in moments.
fn quick() -> WorkerSettings {
    WorkerSettings {
        backoff: Backoff {
            first: Duration::from_millis(5),
            max: Duration::from_millis(40),
        },
        poll: Duration::from_millis(5),
    }
}

async fn undelivered(db: &TestDb) -> i64 {
    sqlx::query_scalar("select count(*) from wallet_outbox where delivered_at is null")
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// Waits, for a bounded time, until the outbox is empty.
async fn until_delivered(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while undelivered(db).await > 0 {
        assert!(Instant::now() < deadline, "the outbox was not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A new member from a postcard of `db`'s program, scanned at `till`: the pass's external id.
async fn claim(db: &TestDb, till: &Till) -> String {
    till.claim(&db.postcard().await).await
}

#[tokio::test]
async fn claims_during_a_wallet_outage_succeed_and_are_each_delivered_once_when_it_recovers() {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let (service, url) = wallet_service(0).await;
    service.down.store(true, Ordering::SeqCst);
    let workers: Vec<_> = (0..2)
        .map(|_| server::wallet::spawn(db.app.clone(), webhook(&url), quick()))
        .collect();
    let mut members = Vec::new();
    for _ in 0..12 {
        members.push(claim(&db, &till).await);
    }
    // The outage lasts until the workers have been refused, and have retried, a good few times.
    let deadline = Instant::now() + Duration::from_secs(60);
    while service.failed.load(Ordering::SeqCst) < 30 {
        assert!(Instant::now() < deadline, "the workers did not try");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        undelivered(&db).await,
        12,
        "nothing is delivered during the outage"
    );
    service.down.store(false, Ordering::SeqCst);
    until_delivered(&db).await;
    for worker in &workers {
        worker.abort();
    }

    let rows: Vec<(i64, String, String, i32, Option<String>)> = sqlx::query_as(
        "select o.id, m.external_id, m.pass_token, o.attempts, o.last_error
           from wallet_outbox o join passes_master m on m.program_id = o.program_id and m.id = o.pass_id
          order by o.id",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(rows.len(), members.len());
    let taken = service.taken.lock().unwrap();
    assert_eq!(taken.len(), rows.len(), "one key per claim");
    for (id, external_id, token, _, last_error) in &rows {
        let (times, body) = &taken[&id.to_string()];
        assert_eq!(*times, 1, "row {id} was taken {times} times");
        assert_eq!(body["idempotency_key"], id.to_string());
        assert_eq!(body["external_id"], external_id.as_str());
        assert_eq!(body["pass_url"], format!("/pass/{token}"));
        assert_eq!(body["event"], "pass.claimed");
        assert_eq!(body["program_id"], db.program_id.to_string());
        assert!(members.contains(external_id));
        assert_eq!(last_error, &None);
    }
    // Every refusal the service gave was recorded as a failed attempt on its row.
    let failures = service.failed.load(Ordering::SeqCst);
    let attempts: i64 = rows.iter().map(|r| i64::from(r.3)).sum();
    assert_eq!(attempts, failures as i64);
    assert!(rows.iter().any(|r| r.3 >= 2), "some row was retried");
    assert_eq!(
        service.requests.load(Ordering::SeqCst),
        failures + rows.len()
    );
    assert_eq!(service.overlaps.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failed_delivery_is_recorded_and_put_off_exponentially() {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    // A port with nothing listening: the wallet service is down.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/passes", closed.local_addr().unwrap());
    drop(closed);
    claim(&db, &till).await;
    let backoff = Backoff {
        first: Duration::from_secs(60),
        max: Duration::from_secs(600),
    };
    let attempt = deliver_next(&db.app, &webhook(&url), &backoff)
        .await
        .unwrap();
    assert!(
        matches!(&attempt, Some(Attempt::Failed { error, .. }) if error == "could not connect"),
        "{attempt:?}"
    );
    // Not due again for a minute, so nothing is taken now.
    assert_eq!(
        deliver_next(&db.app, &webhook(&url), &backoff)
            .await
            .unwrap(),
        None
    );
    let (attempts, last_error, wait): (i32, Option<String>, f64) = sqlx::query_as(
        "select attempts, last_error, extract(epoch from next_attempt_at - last_attempt_at)::float8
           from wallet_outbox",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(attempts, 1);
    assert_eq!(last_error.as_deref(), Some("could not connect"));
    assert!((59.0..=61.0).contains(&wait), "{wait}");
    assert_eq!(undelivered(&db).await, 1);
}

#[tokio::test]
async fn an_https_wallet_service_is_delivered_to_when_its_ca_is_trusted_and_refused_in_words_when_not()
 {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let tls = TestTls::generate();
    let (service, url) = serve_wallet_service(0, Some(&tls)).await;
    assert!(url.starts_with("https://"));
    let external_id = claim(&db, &till).await;
    let backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(1),
    };

    // The system's roots alone do not vouch for a private CA: nothing is sent, and the reason is kept.
    let untrusting = webhook(&url);
    let attempt = deliver_next(&db.app, &untrusting, &backoff).await.unwrap();
    let Some(Attempt::Failed { error, .. }) = &attempt else {
        panic!("{attempt:?}");
    };
    assert!(error.starts_with("TLS failed: "), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert_eq!(service.requests.load(Ordering::SeqCst), 0);

    // Told of the CA, the webhook delivers the announcement over HTTPS, once.
    let trusting = Webhook::new(&url, Duration::from_secs(10), Some(&tls.ca_pem)).unwrap();
    let mut attempt = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while attempt.is_none() {
        assert!(Instant::now() < deadline, "the row did not come due");
        attempt = deliver_next(&db.app, &trusting, &backoff).await.unwrap();
    }
    assert!(
        matches!(attempt, Some(Attempt::Delivered { .. })),
        "{attempt:?}"
    );
    assert_eq!(undelivered(&db).await, 0);
    let taken = service.taken.lock().unwrap();
    assert_eq!(taken.len(), 1);
    let (times, body) = taken.values().next().unwrap();
    assert_eq!(*times, 1);
    assert_eq!(body["external_id"], external_id.as_str());
}

#[tokio::test]
async fn a_claim_that_rolls_back_leaves_no_outbox_row() {
    let db = TestDb::new().await;
    let code = db.postcard().await;
    // The function itself, in a transaction of the test's: the counter's path commits its statement at once.
    let mut tx = db.app.begin().await.unwrap();
    let answer: serde_json::Value =
        sqlx::query_scalar("select public.process_claim_attempt($1, $2)")
            .bind(&code)
            .bind(db.program_id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    let inside: i64 = sqlx::query_scalar("select count(*) from wallet_outbox")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(inside, 1, "the claim's transaction holds its announcement");
    tx.rollback().await.unwrap();
    let after: i64 = sqlx::query_scalar("select count(*) from wallet_outbox")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(after, 0);
    // The postcard is still unclaimed, and claiming it at the counter announces it once.
    let till = Till::clerk(&db).await;
    till.claim(&code).await;
    assert_eq!(undelivered(&db).await, 1);
    // A refused claim (already claimed) writes nothing either.
    let again = till.scan(&code).await;
    assert!(matches!(again, Err(LoyaltyError::AlreadyClaimed { .. })));
    assert_eq!(undelivered(&db).await, 1);
}

#[tokio::test]
async fn workers_running_at_once_never_send_one_row_twice() {
    let db = TestDb::with_pool_size(12).await;
    let till = Till::clerk(&db).await;
    let rows = 40;
    for _ in 0..rows {
        claim(&db, &till).await;
    }
    let (service, url) = wallet_service(0).await;
    let workers = 6;
    let barrier = Arc::new(Barrier::new(workers));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let barrier = barrier.clone();
        let pool = db.app.clone();
        let provider = webhook(&url);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut sent = 0;
            while let Some(attempt) = deliver_next(&pool, &provider, &quick().backoff)
                .await
                .unwrap()
            {
                assert!(matches!(attempt, Attempt::Delivered { .. }), "{attempt:?}");
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for handle in handles {
        sent += handle.await.unwrap();
    }
    assert_eq!(sent, rows);
    assert_eq!(undelivered(&db).await, 0);
    assert_eq!(service.requests.load(Ordering::SeqCst), rows);
    assert_eq!(service.overlaps.load(Ordering::SeqCst), 0);
    let taken = service.taken.lock().unwrap();
    assert_eq!(taken.len(), rows);
    assert!(taken.values().all(|(times, _)| *times == 1));
}

#[tokio::test]
async fn the_pass_page_provider_answers_with_the_members_pass_page() {
    use server::wallet::{PassNotice, PassPage, WalletProvider};
    let notice = PassNotice {
        idempotency_key: "7".into(),
        event: "pass.claimed",
        program_id: uuid::Uuid::new_v4(),
        external_id: "CLM-ABCD2345XY".into(),
        pass_url: format!("/pass/{}", "a".repeat(64)),
        claimed_at: chrono::Utc::now(),
    };
    let provider = PassPage {
        base_url: "https://loyalty.example/".into(),
    };
    assert_eq!(
        provider.provision(&notice).await,
        Ok(format!("https://loyalty.example/pass/{}", "a".repeat(64)))
    );
}

#[tokio::test]
async fn managers_see_delivery_state_and_clerks_do_not() {
    let server = TestServer::start().await;
    let till = Till::sign_in(&server.db, &server.clerk).await;
    let (_service, url) = wallet_service(1).await;
    let member = claim(&server.db, &till).await;
    let provider = webhook(&url);
    let backoff = Backoff {
        first: Duration::ZERO,
        max: Duration::ZERO,
    };
    assert!(matches!(
        deliver_next(&server.db.app, &provider, &backoff)
            .await
            .unwrap(),
        Some(Attempt::Failed { .. })
    ));
    claim(&server.db, &till).await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let overview: app::passes::WalletOverview =
        manager.post("wallet", &[]).await.json().await.unwrap();
    assert_eq!(
        (overview.pending, overview.retrying, overview.delivered),
        (2, 1, 0)
    );
    let failing = overview
        .rows
        .iter()
        .find(|r| r.external_id == member)
        .unwrap();
    assert_eq!(failing.attempts, 1);
    assert_eq!(failing.last_error.as_deref(), Some("answered HTTP 500"));

    while deliver_next(&server.db.app, &provider, &backoff)
        .await
        .unwrap()
        .is_some()
    {}
    let page = manager.get("/wallet").await.text().await.unwrap();
    assert!(page.contains(r#"data-delivered="2""#), "{page}");
    assert!(page.contains(&member), "{page}");

    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let response = clerk.post("wallet", &[]).await;
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    let err: LoyaltyError = response.json().await.unwrap();
    assert_eq!(err, LoyaltyError::ManagersOnly);
}

/// Rows are taken program by program (a Citus cluster refuses a lock over all programs' rows): a program whose
/// every due row is held by a worker still sending it keeps no other program waiting.
#[tokio::test]
async fn a_program_whose_rows_are_all_held_keeps_no_other_program_waiting() {
    use server::testkit::{new_program, postcard_of};
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    claim(&db, &till).await;
    let other = new_program(&db.owner, "Other shop").await;
    let code = postcard_of(&db.owner, other).await;
    let answer: serde_json::Value =
        sqlx::query_scalar("select public.process_claim_attempt($1, $2)")
            .bind(&code)
            .bind(other)
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    // The first program's row is the more overdue one, and another worker holds it.
    sqlx::query("update wallet_outbox set next_attempt_at = now() - interval '1 hour' where program_id = $1")
        .bind(db.program_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let mut held = db.owner.begin().await.unwrap();
    sqlx::query("select id from wallet_outbox where program_id = $1 for update")
        .bind(db.program_id)
        .execute(&mut *held)
        .await
        .unwrap();

    let (service, url) = wallet_service(0).await;
    let attempt = deliver_next(&db.app, &webhook(&url), &quick().backoff)
        .await
        .unwrap();
    assert!(
        matches!(attempt, Some(Attempt::Delivered { .. })),
        "{attempt:?}"
    );
    let delivered: Vec<uuid::Uuid> =
        sqlx::query_scalar("select program_id from wallet_outbox where delivered_at is not null")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(delivered, [other], "the other program's row went out");
    assert_eq!(service.requests.load(Ordering::SeqCst), 1);
    assert!(
        deliver_next(&db.app, &webhook(&url), &quick().backoff)
            .await
            .unwrap()
            .is_none(),
        "the held row is left to its worker"
    );
    held.rollback().await.unwrap();
    let attempt = deliver_next(&db.app, &webhook(&url), &quick().backoff)
        .await
        .unwrap();
    assert!(
        matches!(attempt, Some(Attempt::Delivered { .. })),
        "{attempt:?}"
    );
    assert_eq!(undelivered(&db).await, 0);
}
