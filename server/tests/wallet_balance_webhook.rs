//! The webhook of balance changes: every change of every kind of pass reaches the receiver with the balance
//! and a version to order by, through the receiver's outage, each taken once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use server::testkit::{TestDb, Till};
use server::wallet::devices::{self, Channel};
use server::wallet::{Backoff, Webhook, WorkerSettings};

#[derive(Default)]
struct Receiver {
    fail_first: usize,
    requests: AtomicUsize,
    /// Taken notices by idempotency key: how often, and the body.
    taken: Mutex<BTreeMap<String, (usize, serde_json::Value)>>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> StatusCode {
    if receiver.requests.fetch_add(1, Ordering::SeqCst) < receiver.fail_first {
        return StatusCode::BAD_GATEWAY;
    }
    let key = headers["idempotency-key"].to_str().unwrap().to_owned();
    receiver
        .taken
        .lock()
        .unwrap()
        .entry(key)
        .or_insert((0, body))
        .0 += 1;
    StatusCode::OK
}

async fn serve(fail_first: usize) -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver {
        fail_first,
        ..Default::default()
    });
    let app = axum::Router::new()
        .route("/changes", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, format!("http://{addr}/changes"))
}

async fn undelivered(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "select count(*) from wallet_deliveries where channel = 'webhook' and delivered_at is null",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_balance_change_is_sent_with_its_balance_and_version_once() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    devices::set_channels(&db.app, &[Channel::Webhook])
        .await
        .unwrap();
    let (receiver, url) = serve(4).await;
    let counter = db.member(0).await;
    till.earn(&counter, 30).await.unwrap();
    till.redeem(&counter, 12).await.unwrap();
    let claimed = till.claim(&db.postcard().await).await;
    till.earn(&claimed, 7).await.unwrap();

    let webhook = Webhook::new(&url, Duration::from_secs(10), None).unwrap();
    let settings = WorkerSettings {
        backoff: Backoff {
            first: Duration::from_millis(5),
            max: Duration::from_millis(40),
        },
        poll: Duration::from_millis(5),
    };
    let workers: Vec<_> = (0..2)
        .map(|_| server::wallet::outbox::spawn(db.app.clone(), webhook.clone(), settings))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while undelivered(&db).await > 0 {
        assert!(Instant::now() < deadline, "the changes were not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for worker in workers {
        worker.abort();
    }

    let taken = receiver.taken.lock().unwrap();
    let mut by_member: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (key, (times, body)) in taken.iter() {
        assert_eq!(*times, 1, "{key} taken {times} times");
        assert_eq!(body["event"], "pass.balance_changed");
        assert_eq!(body["idempotency_key"], key.as_str());
        assert!(body["pass_url"].as_str().unwrap().starts_with("/pass/"));
        by_member
            .entry(body["external_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                body["version"].as_i64().unwrap(),
                body["balance"].as_i64().unwrap(),
            ));
    }
    for changes in by_member.values_mut() {
        changes.sort();
    }
    assert_eq!(by_member[&counter], [(1, 0), (2, 30), (3, 18)]);
    assert_eq!(by_member[&claimed], [(1, 0), (2, 7)]);
    assert_eq!(taken.len(), 5);
    assert!(
        receiver.requests.load(Ordering::SeqCst) >= 9,
        "the outage was retried through"
    );
}

#[tokio::test]
async fn managers_see_how_each_wallets_balance_updates_stand() {
    let server = server::testkit::TestServer::start().await;
    let till = Till::sign_in(&server.db, &server.manager).await;
    devices::set_channels(&server.db.app, &[Channel::Webhook])
        .await
        .unwrap();
    let member = server.db.member(0).await;
    till.earn(&member, 9).await.unwrap();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/changes", closed.local_addr().unwrap());
    drop(closed);
    let webhook = Webhook::new(&url, Duration::from_secs(10), None).unwrap();
    let backoff = Backoff {
        first: Duration::from_secs(3600),
        max: Duration::from_secs(3600),
    };
    let attempt = server::wallet::outbox::deliver_next_change(&server.db.app, &webhook, &backoff)
        .await
        .unwrap();
    assert!(matches!(
        attempt,
        Some(server::wallet::Attempt::Failed { .. })
    ));

    let manager = server::testkit::ApiClient::sign_in(&server, &server.manager).await;
    let overview: app::passes::WalletOverview =
        manager.post("wallet", &[]).await.json().await.unwrap();
    assert_eq!(overview.channels.len(), 1);
    let webhook_row = &overview.channels[0];
    assert_eq!(webhook_row.channel, "webhook");
    assert_eq!(
        (
            webhook_row.pending,
            webhook_row.retrying,
            webhook_row.delivered
        ),
        (2, 1, 0)
    );
    assert_eq!(webhook_row.last_error.as_deref(), Some("could not connect"));
    let page = manager.get("/wallet").await.text().await.unwrap();
    assert!(page.contains(r#"data-channel="webhook""#), "{page}");
}
