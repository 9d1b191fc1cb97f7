//! Apple's pass update service over real HTTP, as a phone's Wallet calls it: register with the pass's token,
//! ask what changed since a tag, fetch the latest pass, unregister, send logs.

use std::sync::Arc;

use reqwest::StatusCode;
use server::testkit::{TEST_PASS_TYPE_ID, TestPassIdentity, TestServer, Till};
use server::wallet::WalletConfig;
use server::wallet::pkpass::PassSigner;
use uuid::Uuid;

struct Phone {
    http: reqwest::Client,
    base: String,
    device: String,
    push_token: String,
}

impl Phone {
    fn new(server: &TestServer, device: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{}/wallet/apple/v1", server.url),
            device: device.to_owned(),
            push_token: "0123abcd".repeat(8),
        }
    }

    fn registration(&self, pass_type: &str, serial: Uuid) -> String {
        format!(
            "{}/devices/{}/registrations/{pass_type}/{serial}",
            self.base, self.device
        )
    }

    async fn register(&self, serial: Uuid, token: &str) -> StatusCode {
        self.http
            .post(self.registration(TEST_PASS_TYPE_ID, serial))
            .header("authorization", format!("ApplePass {token}"))
            .json(&serde_json::json!({ "pushToken": self.push_token }))
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn unregister(&self, serial: Uuid, token: &str) -> StatusCode {
        self.http
            .delete(self.registration(TEST_PASS_TYPE_ID, serial))
            .header("authorization", format!("ApplePass {token}"))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The status, and the serial numbers and tag when there are changes.
    async fn changed_since(&self, tag: Option<&str>) -> (StatusCode, Option<serde_json::Value>) {
        let url = format!(
            "{}/devices/{}/registrations/{TEST_PASS_TYPE_ID}",
            self.base, self.device
        );
        let url = match tag {
            Some(tag) => {
                let query = serde_urlencoded::to_string([("passesUpdatedSince", tag)]).unwrap();
                format!("{url}?{query}")
            }
            None => url,
        };
        let response = self.http.get(url).send().await.unwrap();
        let status = response.status();
        let body = if status == StatusCode::OK {
            Some(response.json().await.unwrap())
        } else {
            None
        };
        (status, body)
    }

    async fn latest(&self, serial: Uuid, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/passes/{TEST_PASS_TYPE_ID}/{serial}", self.base))
            .header("authorization", format!("ApplePass {token}"))
            .send()
            .await
            .unwrap()
    }
}

async fn pass_of(server: &TestServer, external_id: &str) -> (Uuid, String) {
    sqlx::query_as("select id, wallet_token from passes_master where external_id = $1")
        .bind(external_id)
        .fetch_one(&server.db.owner)
        .await
        .unwrap()
}

async fn configured(identity: &TestPassIdentity) -> TestServer {
    TestServer::start_with_wallet(WalletConfig {
        apple: Some(Arc::new(PassSigner::load(&identity.files).unwrap())),
        public_url: "https://loyalty.test".to_owned(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_phone_registers_learns_of_each_change_and_fetches_the_new_balance() {
    let identity = TestPassIdentity::generate();
    let server = configured(&identity).await;
    let till = Till::manager(&server.db).await;
    let member = server.db.member(10).await;
    let (serial, token) = pass_of(&server, &member).await;
    let phone = Phone::new(&server, "device-a1");

    assert_eq!(
        phone.register(serial, &"f".repeat(64)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        phone.register(Uuid::new_v4(), &token).await,
        StatusCode::UNAUTHORIZED
    );
    let other_type = phone
        .http
        .post(phone.registration("pass.other.type", serial))
        .header("authorization", format!("ApplePass {token}"))
        .json(&serde_json::json!({ "pushToken": phone.push_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(other_type.status(), StatusCode::NOT_FOUND);
    assert_eq!(phone.register(serial, &token).await, StatusCode::CREATED);
    assert_eq!(
        phone.register(serial, &token).await,
        StatusCode::OK,
        "already registered"
    );

    let (status, body) = phone.changed_since(None).await;
    assert_eq!(status, StatusCode::OK);
    let body = body.unwrap();
    assert_eq!(
        body["serialNumbers"],
        serde_json::json!([serial.to_string()])
    );
    let tag = body["lastUpdated"].as_str().unwrap().to_owned();
    assert_eq!(
        phone.changed_since(Some(&tag)).await.0,
        StatusCode::NO_CONTENT,
        "nothing changed since the tag just given"
    );
    for not_ours in ["12345", "garbage", ":", ","] {
        let (status, body) = phone.changed_since(Some(not_ours)).await;
        assert_eq!(status, StatusCode::OK, "{not_ours}");
        assert_eq!(
            body.unwrap()["serialNumbers"],
            serde_json::json!([serial.to_string()]),
            "a tag we never gave tells every pass: {not_ours}"
        );
    }

    till.earn(&member, 32).await.unwrap();
    let (status, body) = phone.changed_since(Some(&tag)).await;
    assert_eq!(status, StatusCode::OK);
    let body = body.unwrap();
    assert_eq!(
        body["serialNumbers"],
        serde_json::json!([serial.to_string()])
    );
    let after_the_earn = body["lastUpdated"].as_str().unwrap();
    assert_ne!(after_the_earn, tag);
    assert_eq!(
        phone.changed_since(Some(after_the_earn)).await.0,
        StatusCode::NO_CONTENT,
        "the earn is told once"
    );

    let latest = phone.latest(serial, &token).await;
    assert_eq!(latest.status(), StatusCode::OK);
    assert_eq!(
        latest.headers()["content-type"],
        "application/vnd.apple.pkpass"
    );
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(latest.bytes().await.unwrap())).unwrap();
    let pass: serde_json::Value =
        serde_json::from_reader(archive.by_name("pass.json").unwrap()).unwrap();
    assert_eq!(pass["storeCard"]["headerFields"][0]["value"], 42);
    assert_eq!(
        phone.latest(serial, "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        phone.unregister(serial, "wrong").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(phone.unregister(serial, &token).await, StatusCode::OK);
    assert_eq!(
        phone.changed_since(None).await.0,
        StatusCode::NO_CONTENT,
        "nothing registered any more"
    );
}

#[tokio::test]
async fn a_bad_push_token_is_refused_and_logs_are_taken() {
    let identity = TestPassIdentity::generate();
    let server = configured(&identity).await;
    let member = server.db.member(0).await;
    let (serial, token) = pass_of(&server, &member).await;
    let mut phone = Phone::new(&server, "device-b2");
    phone.push_token = "not a token".to_owned();
    assert_eq!(
        phone.register(serial, &token).await,
        StatusCode::BAD_REQUEST
    );
    let logs = phone
        .http
        .post(format!("{}/log", phone.base))
        .json(&serde_json::json!({ "logs": ["Web service error for pass.test.loyalty"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(logs.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_apple_settings_the_service_is_not_there() {
    let server = TestServer::start().await;
    let member = server.db.member(0).await;
    let (serial, token) = pass_of(&server, &member).await;
    let phone = Phone::new(&server, "device-c3");
    assert_eq!(phone.register(serial, &token).await, StatusCode::NOT_FOUND);
    assert_eq!(phone.changed_since(None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        phone.latest(serial, &token).await.status(),
        StatusCode::NOT_FOUND
    );
}
