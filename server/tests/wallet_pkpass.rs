//! Apple Wallet passes: signed so that the signature verifies against the issuing CA, with a manifest whose
//! hashes match and the keys Wallet requires, downloaded by the member and by staff over real HTTP, and not
//! offered at all without the settings.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use reqwest::StatusCode;
use server::testkit::{
    ApiClient, TEST_PASS_TYPE_ID, TestPassIdentity, TestServer, member_of, new_program,
};
use server::wallet::WalletConfig;
use server::wallet::pkpass::PassSigner;

fn wallet(identity: &TestPassIdentity) -> WalletConfig {
    WalletConfig {
        apple: Some(Arc::new(PassSigner::load(&identity.files).unwrap())),
        public_url: "https://loyalty.test".to_owned(),
        ..Default::default()
    }
}

/// The files of a `.pkpass`, by name.
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        files.insert(file.name().unwrap().into_owned(), content);
    }
    files
}

async fn token_of(server: &TestServer, external_id: &str) -> String {
    sqlx::query_scalar("select pass_token from passes_master where external_id = $1")
        .bind(external_id)
        .fetch_one(&server.db.owner)
        .await
        .unwrap()
}

async fn download(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

#[tokio::test]
async fn a_members_pass_is_signed_hashed_and_carries_what_wallet_requires() {
    let identity = TestPassIdentity::generate();
    let server = TestServer::start_with_wallet(wallet(&identity)).await;
    let member = server.db.member(120).await;
    let token = token_of(&server, &member).await;

    let response = download(&format!("{}/pass/{token}/wallet.pkpass", server.url)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apple.pkpass"
    );
    let files = unzip(&response.bytes().await.unwrap());

    let manifest: BTreeMap<String, String> =
        serde_json::from_slice(&files["manifest.json"]).unwrap();
    let hashed: Vec<&String> = manifest.keys().collect();
    let expected: Vec<&String> = files
        .keys()
        .filter(|name| *name != "manifest.json" && *name != "signature")
        .collect();
    assert_eq!(hashed, expected, "the manifest names every other file");
    for (name, hash) in &manifest {
        let actual: String = openssl::sha::sha1(&files[name])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&actual, hash, "{name}");
    }
    assert!(identity.verifies(&files["signature"], &files["manifest.json"]));
    let mut tampered = files["manifest.json"].clone();
    tampered[5] ^= 1;
    assert!(
        !identity.verifies(&files["signature"], &tampered),
        "a changed manifest fails"
    );

    let pass: serde_json::Value = serde_json::from_slice(&files["pass.json"]).unwrap();
    let pass_id: uuid::Uuid =
        sqlx::query_scalar("select id from passes_master where external_id = $1")
            .bind(&member)
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(pass["formatVersion"], 1);
    assert_eq!(pass["passTypeIdentifier"], TEST_PASS_TYPE_ID);
    assert_eq!(pass["teamIdentifier"], "TEAM123456");
    assert_eq!(pass["serialNumber"], pass_id.to_string());
    assert_eq!(pass["webServiceURL"], "https://loyalty.test/wallet/apple");
    assert!(pass["authenticationToken"].as_str().unwrap().len() >= 16);
    for key in [
        "organizationName",
        "description",
        "backgroundColor",
        "foregroundColor",
    ] {
        assert!(pass[key].is_string(), "{key}");
    }
    assert_eq!(pass["barcodes"][0]["format"], "PKBarcodeFormatQR");
    assert_eq!(pass["barcodes"][0]["message"], member);
    assert_eq!(pass["storeCard"]["headerFields"][0]["key"], "balance");
    assert_eq!(pass["storeCard"]["headerFields"][0]["value"], 120);
    assert!(
        files.contains_key("icon.png"),
        "Wallet refuses a pass without an icon"
    );
}

#[tokio::test]
async fn staff_download_passes_of_their_own_program_only() {
    let identity = TestPassIdentity::generate();
    let server = TestServer::start_with_wallet(wallet(&identity)).await;
    let member = server.db.member(5).await;
    let other_program = new_program(&server.db.owner, "Elsewhere").await;
    let stranger = member_of(&server.db.owner, other_program, 5).await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;

    let own = clerk
        .get(&format!(
            "/api/wallet.pkpass?member={}",
            member.to_lowercase()
        ))
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    let files = unzip(&own.bytes().await.unwrap());
    assert!(identity.verifies(&files["signature"], &files["manifest.json"]));

    let theirs = clerk
        .get(&format!("/api/wallet.pkpass?member={stranger}"))
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = theirs.json().await.unwrap();
    assert_eq!(body["code"], "MEMBER_NOT_FOUND");

    let page = clerk
        .get(&format!("/member/{member}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/api/wallet.pkpass?member={member}")),
        "the member page offers the pass: {page}"
    );

    let anonymous = download(&format!("{}/api/wallet.pkpass?member={member}", server.url)).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_apple_settings_no_button_is_shown_and_no_pass_is_made() {
    let server = TestServer::start().await;
    let member = server.db.member(5).await;
    let token = token_of(&server, &member).await;
    let page = download(&format!("{}/pass/{token}", server.url))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&member), "the pass page itself is served");
    assert!(!page.contains("Add to Apple Wallet"));
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let staff_page = clerk
        .get(&format!("/member/{member}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        staff_page.contains(&member),
        "the member page itself is served"
    );
    assert!(!staff_page.contains("wallet.pkpass"));
    let response = download(&format!("{}/pass/{token}/wallet.pkpass", server.url)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "WALLET_NOT_SET_UP");

    let identity = TestPassIdentity::generate();
    let configured = TestServer::start_with_wallet(wallet(&identity)).await;
    let member = configured.db.member(5).await;
    let token = token_of(&configured, &member).await;
    let page = download(&format!("{}/pass/{token}", configured.url))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Add to Apple Wallet"), "{page}");
    assert!(page.contains(&format!("/pass/{token}/wallet.pkpass")));
    let unknown = download(&format!(
        "{}/pass/{}/wallet.pkpass",
        configured.url,
        "0".repeat(64)
    ))
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[test]
fn a_certificate_that_does_not_match_its_key_is_refused_at_start_up() {
    let identity = TestPassIdentity::generate();
    let mut files = identity.files.clone();
    files.key = identity.dir.join("wwdr.key");
    let err = PassSigner::load(&files).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    let mut files = identity.files.clone();
    files.key = identity.files.certificate.clone();
    let err = PassSigner::load(&files).unwrap_err().to_string();
    assert!(err.contains("not an unencrypted PEM private key"), "{err}");
    assert!(!err.contains("BEGIN"), "{err}");
}
