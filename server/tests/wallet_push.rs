//! The push worker against a stand-in for Apple's push service: HTTP/2 over TLS on loopback, checking each
//! request's topic, headers and ES256 token signature. A change reaches every registered device, a 410 removes
//! the device, and failures are retried until the change is taken.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Version};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use server::testkit::{TEST_PASS_TYPE_ID, TestDb, TestPassIdentity, TestTls, Till};
use server::tls::TlsListener;
use server::wallet::apns::{Apns, ApnsFiles, Push};
use server::wallet::devices::{self, Channel};
use server::wallet::{Backoff, WorkerSettings};

const KEY_ID: &str = "KEY1234567";
const TEAM_ID: &str = "TEAM123456";
const GONE_TOKEN: &str = "dead0000dead0000dead0000dead0000";

/// The stand-in: answers 503 to its first `fail_first` good requests, 410 for [`GONE_TOKEN`], 200 otherwise;
/// 403 to any request whose topic, headers or token are wrong.
struct PushService {
    public_key: DecodingKey,
    fail_first: usize,
    good: AtomicUsize,
    bad: Mutex<Vec<String>>,
    delivered: Mutex<HashMap<String, usize>>,
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    iat: i64,
}

impl PushService {
    fn check(&self, version: Version, headers: &HeaderMap) -> Result<(), String> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        if version != Version::HTTP_2 {
            return Err(format!("{version:?}"));
        }
        if header("apns-topic") != TEST_PASS_TYPE_ID {
            return Err(format!("topic {}", header("apns-topic")));
        }
        if header("apns-push-type") != "background" || header("apns-priority") != "5" {
            return Err("push type or priority".into());
        }
        // The scheme's name is case-insensitive (RFC 9110); Apple writes it "bearer".
        let (scheme, token) = header("authorization")
            .split_once(' ')
            .ok_or("no authorization")?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(format!("scheme {scheme}"));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<Claims>(token, &self.public_key, &validation)
            .map_err(|err| format!("token: {err}"))?;
        if decoded.header.kid.as_deref() != Some(KEY_ID) || decoded.claims.iss != TEAM_ID {
            return Err("kid or iss".into());
        }
        if (chrono::Utc::now().timestamp() - decoded.claims.iat).abs() > 3600 {
            return Err("stale token".into());
        }
        Ok(())
    }
}

async fn receive(
    State(service): State<Arc<PushService>>,
    Path(push_token): Path<String>,
    version: Version,
    headers: HeaderMap,
) -> StatusCode {
    if let Err(wrong) = service.check(version, &headers) {
        service.bad.lock().unwrap().push(wrong);
        return StatusCode::FORBIDDEN;
    }
    if service.good.fetch_add(1, Ordering::SeqCst) < service.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if push_token == GONE_TOKEN {
        return StatusCode::GONE;
    }
    *service
        .delivered
        .lock()
        .unwrap()
        .entry(push_token)
        .or_default() += 1;
    StatusCode::OK
}

/// Serves the stand-in over HTTP/2 and TLS on 127.0.0.1: its URL.
async fn push_service(
    identity: &TestPassIdentity,
    tls: &TestTls,
    fail_first: usize,
) -> (Arc<PushService>, String) {
    let public = std::fs::read(&identity.apns_public_key).unwrap();
    let service = Arc::new(PushService {
        public_key: DecodingKey::from_ec_pem(&public).unwrap(),
        fail_first,
        good: AtomicUsize::new(0),
        bad: Mutex::new(Vec::new()),
        delivered: Mutex::new(HashMap::new()),
    });
    let app = axum::Router::new()
        .route("/3/device/{token}", axum::routing::post(receive))
        .with_state(service.clone());
    let mut config = (*tls.server_config()).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = TlsListener::new(listener, Arc::new(config)).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (service, format!("https://{addr}"))
}

fn apns(identity: &TestPassIdentity, tls: &TestTls, url: &str, key: &std::path::Path) -> Apns {
    let files = ApnsFiles {
        key: key.to_owned(),
        key_id: KEY_ID.to_owned(),
        team_id: TEAM_ID.to_owned(),
        topic: TEST_PASS_TYPE_ID.to_owned(),
        url: url.to_owned(),
        extra_roots: Some(tls.ca_pem.clone()),
    };
    let _ = identity;
    Apns::new(&files, Duration::from_secs(10)).unwrap()
}

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
    sqlx::query_scalar(
        "select count(*) from wallet_deliveries where channel = 'apple' and delivered_at is null",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_change_reaches_every_device_through_failures_and_a_gone_device_is_removed() {
    let identity = TestPassIdentity::generate();
    let tls = TestTls::generate();
    let (service, url) = push_service(&identity, &tls, 3).await;
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    devices::set_channels(&db.app, &[Channel::Apple])
        .await
        .unwrap();
    let member = db.member(0).await;
    let pass = devices::pass_of_member(&db.app, db.program_id, &member)
        .await
        .unwrap();
    let phone = "ab12".repeat(8);
    for (device, token) in [("phone", phone.as_str()), ("old-phone", GONE_TOKEN)] {
        devices::register_device(&db.app, pass.pass_id, &pass.wallet_token, device, token)
            .await
            .unwrap();
    }
    till.earn(&member, 10).await.unwrap();
    till.earn(&member, 5).await.unwrap();
    assert_eq!(
        undelivered(&db).await,
        3,
        "the pass's first balance and two changes"
    );

    let worker = server::wallet::outbox::spawn(
        db.app.clone(),
        apns(&identity, &tls, &url, &identity.apns_key),
        quick(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while undelivered(&db).await > 0 {
        assert!(Instant::now() < deadline, "the pushes were not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.abort();

    assert_eq!(service.bad.lock().unwrap().clone(), Vec::<String>::new());
    // A change retried for the other device's sake pushes this one again: Wallet then simply finds nothing new.
    let pushes = service.delivered.lock().unwrap()[&phone];
    assert!(
        pushes >= 3,
        "every change reached the phone: {pushes} pushes"
    );
    assert_eq!(
        devices::devices_of(&db.app, db.program_id, pass.pass_id)
            .await
            .unwrap(),
        [("phone".to_owned(), phone.clone())],
        "the device APNs called gone is forgotten"
    );
    let retried: Vec<(i32, Option<String>)> = sqlx::query_as(
        "select attempts, last_error from wallet_deliveries where channel = 'apple' order by change_id",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(
        retried.iter().any(|(attempts, _)| *attempts > 0),
        "{retried:?}"
    );
    assert!(
        retried.iter().all(|(_, error)| error.is_none()),
        "delivered rows keep no error"
    );
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused_by_the_stand_in() {
    let identity = TestPassIdentity::generate();
    let other = TestPassIdentity::generate();
    let tls = TestTls::generate();
    let (service, url) = push_service(&identity, &tls, 0).await;
    let wrong = apns(&identity, &tls, &url, &other.apns_key);
    assert_eq!(
        wrong.push(&"ab12".repeat(8)).await,
        Push::Failed("APNs answered HTTP 403".into())
    );
    assert_eq!(service.bad.lock().unwrap().len(), 1);
    let right = apns(&identity, &tls, &url, &identity.apns_key);
    assert_eq!(right.push(&"ab12".repeat(8)).await, Push::Delivered);
    assert_eq!(right.push(GONE_TOKEN).await, Push::Gone);
}
