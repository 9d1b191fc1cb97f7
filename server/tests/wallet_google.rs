//! Google Wallet: the save link's JWT verifies with the service account's public key and carries the pass's
//! loyalty object; balance changes reach a loopback stand-in for Google's REST API through the outbox, with an
//! access token obtained by a signed assertion.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use server::testkit::{TestDb, TestServer, Till};
use server::wallet::devices::{self, Channel};
use server::wallet::google::{GoogleWallet, GoogleWalletFiles, SAVE_URL};
use server::wallet::{Backoff, WalletConfig, WorkerSettings};

const ISSUER: &str = "3388000000012345678";
const EMAIL: &str = "wallet@loyalty-test.iam.gserviceaccount.com";

/// A service account key made with the openssl command, in a folder removed on drop.
struct ServiceAccount {
    dir: std::path::PathBuf,
    json: std::path::PathBuf,
    public_key: DecodingKey,
}

impl ServiceAccount {
    fn generate() -> Self {
        let dir =
            std::env::temp_dir().join(format!("loyalty-google-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        for args in [
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "key.pem",
            ][..],
            &["pkey", "-in", "key.pem", "-pubout", "-out", "public.pem"][..],
        ] {
            let status = std::process::Command::new("openssl")
                .current_dir(&dir)
                .args(args)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
        let json = dir.join("service-account.json");
        let account = serde_json::json!({ "type": "service_account", "client_email": EMAIL, "private_key": key });
        std::fs::write(&json, account.to_string()).unwrap();
        let public_key =
            DecodingKey::from_rsa_pem(&std::fs::read(dir.join("public.pem")).unwrap()).unwrap();
        Self {
            dir,
            json,
            public_key,
        }
    }

    fn wallet(&self, api_url: &str) -> GoogleWallet {
        let files = GoogleWalletFiles {
            issuer_id: ISSUER.to_owned(),
            class_suffix: "points".to_owned(),
            service_account: self.json.clone(),
            api_url: api_url.to_owned(),
            token_url: format!("{api_url}/token"),
            public_url: "https://loyalty.test".to_owned(),
        };
        GoogleWallet::load(&files, Duration::from_secs(10)).unwrap()
    }
}

impl Drop for ServiceAccount {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Google's REST API as the stand-in sees it.
struct GoogleApi {
    public_key: DecodingKey,
    token_url: Mutex<String>,
    grants: AtomicUsize,
    bad: Mutex<Vec<String>>,
    /// (object id, balance) of each update taken.
    updates: Mutex<Vec<(String, i64)>>,
    /// Objects never saved to a wallet: 404.
    unsaved: Mutex<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct Grant {
    grant_type: String,
    assertion: String,
}

async fn token(
    State(api): State<Arc<GoogleApi>>,
    Form(grant): Form<Grant>,
) -> (StatusCode, String) {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[api.token_url.lock().unwrap().clone()]);
    validation.set_issuer(&[EMAIL]);
    let checked =
        jsonwebtoken::decode::<serde_json::Value>(&grant.assertion, &api.public_key, &validation);
    match checked {
        Ok(data)
            if grant.grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer"
                && data.claims["scope"]
                    == "https://www.googleapis.com/auth/wallet_object.issuer" =>
        {
            api.grants.fetch_add(1, Ordering::SeqCst);
            let body = serde_json::json!({ "access_token": "granted-1", "expires_in": 3600, "token_type": "Bearer" });
            (StatusCode::OK, body.to_string())
        }
        other => {
            api.bad
                .lock()
                .unwrap()
                .push(format!("grant: {:?}", other.err()));
            (StatusCode::BAD_REQUEST, String::new())
        }
    }
}

async fn update(
    State(api): State<Arc<GoogleApi>>,
    Path(object_id): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> StatusCode {
    if headers["authorization"] != "Bearer granted-1" {
        api.bad.lock().unwrap().push("no access token".into());
        return StatusCode::UNAUTHORIZED;
    }
    if api.unsaved.lock().unwrap().contains(&object_id) {
        return StatusCode::NOT_FOUND;
    }
    let balance = body["loyaltyPoints"]["balance"]["int"].as_i64().unwrap();
    api.updates.lock().unwrap().push((object_id, balance));
    StatusCode::OK
}

async fn google_api(account: &ServiceAccount) -> (Arc<GoogleApi>, String) {
    let api = Arc::new(GoogleApi {
        public_key: account.public_key.clone(),
        token_url: Mutex::new(String::new()),
        grants: AtomicUsize::new(0),
        bad: Mutex::new(Vec::new()),
        updates: Mutex::new(Vec::new()),
        unsaved: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .route(
            "/walletobjects/v1/loyaltyObject/{id}",
            axum::routing::patch(update),
        )
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    *api.token_url.lock().unwrap() = format!("{url}/token");
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (api, url)
}

async fn pass_of(db: &TestDb, external_id: &str) -> (uuid::Uuid, String) {
    sqlx::query_as("select id, pass_token from passes_master where external_id = $1")
        .bind(external_id)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_save_link_is_a_jwt_of_the_loyalty_object_signed_with_the_issuers_key() {
    let account = ServiceAccount::generate();
    let server = TestServer::start_with_wallet(WalletConfig {
        google: Some(Arc::new(account.wallet("http://127.0.0.1:9"))),
        public_url: "https://loyalty.test".to_owned(),
        ..Default::default()
    })
    .await;
    let member = server.db.member(64).await;
    let (pass_id, token) = pass_of(&server.db, &member).await;
    let page = reqwest::get(format!("{}/pass/{token}", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Add to Google Wallet"), "{page}");
    assert!(!page.contains("Add to Apple Wallet"));

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser
        .get(format!("{}/pass/{token}/google-wallet", server.url))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let location = answer.headers()["location"].to_str().unwrap();
    let jwt = location.strip_prefix(&format!("{SAVE_URL}/")).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["google"]);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, &account.public_key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["iss"], EMAIL);
    assert_eq!(claims["typ"], "savetowallet");
    assert_eq!(claims["origins"][0], "https://loyalty.test");
    let object = &claims["payload"]["loyaltyObjects"][0];
    assert_eq!(object["id"], format!("{ISSUER}.{pass_id}"));
    assert_eq!(object["classId"], format!("{ISSUER}.points"));
    assert_eq!(object["loyaltyPoints"]["balance"]["int"], 64);
    assert_eq!(object["barcode"]["value"], member);

    let other = ServiceAccount::generate();
    assert!(
        jsonwebtoken::decode::<serde_json::Value>(jwt, &other.public_key, &validation).is_err()
    );
}

#[tokio::test]
async fn without_google_settings_there_is_no_button_and_no_link() {
    let server = TestServer::start().await;
    let member = server.db.member(1).await;
    let (_, token) = pass_of(&server.db, &member).await;
    let page = reqwest::get(format!("{}/pass/{token}", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Add to Google Wallet"));
    let answer = reqwest::get(format!("{}/pass/{token}/google-wallet", server.url))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn balance_changes_reach_googles_api_through_the_outbox() {
    let account = ServiceAccount::generate();
    let (api, url) = google_api(&account).await;
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    devices::set_channels(&db.app, &[Channel::Google])
        .await
        .unwrap();
    let saved = db.member(0).await;
    let unsaved = db.member(0).await;
    let (saved_id, _) = pass_of(&db, &saved).await;
    let (unsaved_id, _) = pass_of(&db, &unsaved).await;
    api.unsaved
        .lock()
        .unwrap()
        .push(format!("{ISSUER}.{unsaved_id}"));
    till.earn(&saved, 20).await.unwrap();
    till.earn(&saved, 3).await.unwrap();
    till.earn(&unsaved, 5).await.unwrap();

    let settings = WorkerSettings {
        backoff: Backoff {
            first: Duration::from_millis(5),
            max: Duration::from_millis(40),
        },
        poll: Duration::from_millis(5),
    };
    let worker =
        server::wallet::outbox::spawn(db.app.clone(), Arc::new(account.wallet(&url)), settings);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from wallet_deliveries where channel = 'google' and delivered_at is null",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the changes were not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.abort();

    assert_eq!(api.bad.lock().unwrap().clone(), Vec::<String>::new());
    assert_eq!(
        api.updates.lock().unwrap().clone(),
        [(format!("{ISSUER}.{saved_id}"), 23)],
        "only the newest balance of each pass is sent, and a pass never saved is left alone"
    );
    assert_eq!(
        api.grants.load(Ordering::SeqCst),
        1,
        "the access token is kept while it lasts"
    );
}
