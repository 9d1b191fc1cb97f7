//! Google Wallet: an "Add to Google Wallet" link carrying the pass's loyalty object in a JWT signed (RS256)
//! with the issuer's service account key, and each balance change sent to Google's REST API through the
//! outbox, with an access token the same key obtains.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;

use super::devices::{self, Channel, WalletPass};
use super::outbox::{ChangeSender, PassChange};

pub const WALLET_API_URL: &str = "https://walletobjects.googleapis.com";
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Where a saved-pass link goes.
pub const SAVE_URL: &str = "https://pay.google.com/gp/v/save";
const SCOPE: &str = "https://www.googleapis.com/auth/wallet_object.issuer";

/// Where the Google Wallet settings are.
#[derive(Debug, Clone)]
pub struct GoogleWalletFiles {
    /// The issuer id from the Google Wallet console.
    pub issuer_id: String,
    /// The loyalty class's id, without the issuer prefix.
    pub class_suffix: String,
    /// The service account's JSON key file (client_email and private_key).
    pub service_account: PathBuf,
    /// `WALLET_API_URL` and `TOKEN_URL`, or a stand-in's.
    pub api_url: String,
    pub token_url: String,
    /// The server's address, the only origin the save link is used from.
    pub public_url: String,
}

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
}

/// The Google Wallet issuer. Its Debug never shows the key or a token.
pub struct GoogleWallet {
    files: GoogleWalletFiles,
    client_email: String,
    key: EncodingKey,
    client: reqwest::Client,
    access: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for GoogleWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleWallet")
            .field("issuer_id", &self.files.issuer_id)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl GoogleWallet {
    pub fn load(files: &GoogleWalletFiles, timeout: Duration) -> anyhow::Result<Self> {
        let path = &files.service_account;
        let text = std::fs::read(path)
            .with_context(|| format!("reading the Google service account {}", path.display()))?;
        // serde's error could quote the file; the message names only the file.
        let account: ServiceAccount = serde_json::from_slice(&text).map_err(|_| {
            anyhow::anyhow!(
                "{} is not a service account key (JSON with client_email and private_key)",
                path.display()
            )
        })?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|_| {
            anyhow::anyhow!("the private_key in {} is not an RSA key", path.display())
        })?;
        for url in [&files.api_url, &files.token_url] {
            let parsed =
                reqwest::Url::parse(url).map_err(|err| anyhow::anyhow!("{url:?}: {err}"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "https" | "http"),
                "{url:?} must be https:// (or http:// for a relay on the same host)"
            );
        }
        Ok(Self {
            files: files.clone(),
            client_email: account.client_email,
            key,
            client: reqwest::Client::builder().timeout(timeout).build()?,
            access: Mutex::new(None),
        })
    }

    fn object_id(&self, pass_id: uuid::Uuid) -> String {
        format!("{}.{pass_id}", self.files.issuer_id)
    }

    fn points(balance: i32) -> serde_json::Value {
        json!({ "label": "Points", "balance": { "int": balance } })
    }

    /// The loyalty object of a pass, as Google Wallet shows it.
    pub fn loyalty_object(&self, pass: &WalletPass) -> serde_json::Value {
        json!({
            "id": self.object_id(pass.pass_id),
            "classId": format!("{}.{}", self.files.issuer_id, self.files.class_suffix),
            "state": "ACTIVE",
            "accountId": pass.external_id,
            "accountName": pass.external_id,
            "loyaltyPoints": Self::points(pass.points),
            "barcode": { "type": "QR_CODE", "value": pass.external_id, "alternateText": pass.external_id },
        })
    }

    /// The "Add to Google Wallet" link of a pass.
    pub fn save_link(&self, pass: &WalletPass) -> anyhow::Result<String> {
        let claims = json!({
            "iss": self.client_email,
            "aud": "google",
            "typ": "savetowallet",
            "iat": chrono::Utc::now().timestamp(),
            "origins": [self.files.public_url],
            "payload": { "loyaltyObjects": [self.loyalty_object(pass)] },
        });
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|_| anyhow::anyhow!("the Google Wallet link could not be signed"))?;
        Ok(format!("{SAVE_URL}/{jwt}"))
    }

    /// An access token for the REST API, asked for afresh when the one held is near its end.
    async fn access_token(&self) -> Result<String, String> {
        if let Some((token, until)) = self
            .access
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let assertion = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &json!({
                "iss": self.client_email,
                "scope": SCOPE,
                "aud": self.files.token_url,
                "iat": now,
                "exp": now + 3600,
            }),
            &self.key,
        )
        .map_err(|_| "the token request could not be signed".to_owned())?;
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            expires_in: u64,
        }
        let answer = self
            .client
            .post(&self.files.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|err| super::failure_reason(&err))?;
        if !answer.status().is_success() {
            return Err(format!(
                "the token service answered HTTP {}",
                answer.status().as_u16()
            ));
        }
        let granted: Granted = answer
            .json()
            .await
            .map_err(|_| "the token service's answer was not understood".to_owned())?;
        // A minute's margin, so a token never expires on its way.
        let until = Instant::now() + Duration::from_secs(granted.expires_in.saturating_sub(60));
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((granted.access_token.clone(), until));
        Ok(granted.access_token)
    }
}

impl ChangeSender for GoogleWallet {
    fn channel(&self) -> Channel {
        Channel::Google
    }

    async fn send(&self, pool: &PgPool, change: &PassChange) -> Result<(), String> {
        // Only the newest balance matters to Google: an older change of a pass that changed again is skipped.
        let pass = devices::pass_by_id(pool, change.program_id, change.pass_id)
            .await
            .map_err(|err| err.to_string())?;
        if pass.pass_version != change.pass_version {
            return Ok(());
        }
        let token = self.access_token().await?;
        let url = format!(
            "{}/walletobjects/v1/loyaltyObject/{}",
            self.files.api_url.trim_end_matches('/'),
            self.object_id(change.pass_id)
        );
        let answer = self
            .client
            .patch(url)
            .bearer_auth(token)
            .json(&json!({ "loyaltyPoints": Self::points(change.balance) }))
            .send()
            .await
            .map_err(|err| super::failure_reason(&err))?;
        match answer.status().as_u16() {
            200..=299 => Ok(()),
            // Not saved to any Google Wallet yet: the link carries the balance of the moment it is used.
            404 => Ok(()),
            status => Err(format!("Google Wallet answered HTTP {status}")),
        }
    }
}
