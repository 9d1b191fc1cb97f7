//! Apple's push service: a change to a pass is announced to every device that registered for it, by an empty
//! push to the pass type's topic over HTTP/2, authenticated with an ES256 token signed by the team's key. A
//! device whose token APNs calls gone (410) is forgotten; any other failure retries the change.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sqlx::PgPool;

use super::devices::{self, Channel};
use super::outbox::{ChangeSender, PassChange};

/// Apple's production push service.
pub const APNS_URL: &str = "https://api.push.apple.com";

/// APNs takes a token for an hour and refuses new ones more often than every 20 minutes.
const TOKEN_LIFETIME: Duration = Duration::from_secs(40 * 60);

/// Where the push settings are: identifiers, and the file that holds the key.
#[derive(Debug, Clone)]
pub struct ApnsFiles {
    /// The APNs authentication key (.p8, PEM) from the Apple developer account.
    pub key: PathBuf,
    /// That key's identifier.
    pub key_id: String,
    pub team_id: String,
    /// The pass type identifier: the topic of every push.
    pub topic: String,
    /// `APNS_URL`, or a stand-in's.
    pub url: String,
    /// PEM certificates the service's certificate may also chain to (a private CA), beside the system's.
    pub extra_roots: Option<PathBuf>,
}

/// What one push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    Delivered,
    /// The device's token is no longer valid.
    Gone,
    Failed(String),
}

/// The push sender. Its Debug never shows the key or the token.
pub struct Apns {
    client: reqwest::Client,
    url: String,
    topic: String,
    key_id: String,
    team_id: String,
    key: EncodingKey,
    token: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for Apns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apns")
            .field("url", &self.url)
            .field("topic", &self.topic)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

fn roots(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "reading the push service's CA certificates {}",
            path.display()
        )
    })?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
    anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
    Ok(roots)
}

impl Apns {
    pub fn new(files: &ApnsFiles, timeout: Duration) -> anyhow::Result<Self> {
        let pem = std::fs::read(&files.key)
            .with_context(|| format!("reading the APNs key {}", files.key.display()))?;
        // The parser's own error could quote the key; the message names only the file.
        let key = EncodingKey::from_ec_pem(&pem).map_err(|_| {
            anyhow::anyhow!(
                "{} is not an APNs key (a PEM P-256 key, .p8)",
                files.key.display()
            )
        })?;
        let parsed = reqwest::Url::parse(&files.url)
            .map_err(|err| anyhow::anyhow!("the APNs URL {:?}: {err}", files.url))?;
        anyhow::ensure!(parsed.scheme() == "https", "the APNs URL must be https://");
        let mut client = reqwest::Client::builder()
            .timeout(timeout)
            .http2_prior_knowledge();
        if let Some(path) = &files.extra_roots {
            client = client.tls_certs_merge(roots(path)?);
        }
        Ok(Self {
            client: client.build()?,
            url: files.url.trim_end_matches('/').to_owned(),
            topic: files.topic.clone(),
            key_id: files.key_id.clone(),
            team_id: files.team_id.clone(),
            key,
            token: Mutex::new(None),
        })
    }

    /// The provider token, made afresh when the one held is near its end.
    fn bearer(&self) -> Result<String, String> {
        let mut held = self
            .token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, made)) = held.as_ref()
            && made.elapsed() < TOKEN_LIFETIME
        {
            return Ok(token.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.team_id,
            iat: chrono::Utc::now().timestamp(),
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| "the APNs token could not be signed".to_owned())?;
        *held = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    /// Tells the device with `push_token` that its passes changed.
    pub async fn push(&self, push_token: &str) -> Push {
        let bearer = match self.bearer() {
            Ok(bearer) => bearer,
            Err(reason) => return Push::Failed(reason),
        };
        let sent = self
            .client
            .post(format!("{}/3/device/{push_token}", self.url))
            .bearer_auth(bearer)
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "background")
            .header("apns-priority", "5")
            .json(&serde_json::json!({}))
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Push::Delivered,
            Ok(answer) if answer.status().as_u16() == 410 => Push::Gone,
            Ok(answer) => Push::Failed(format!("APNs answered HTTP {}", answer.status().as_u16())),
            Err(err) => Push::Failed(super::failure_reason(&err)),
        }
    }
}

impl ChangeSender for Apns {
    fn channel(&self) -> Channel {
        Channel::Apple
    }

    async fn send(&self, pool: &PgPool, change: &PassChange) -> Result<(), String> {
        let registered = devices::devices_of(pool, change.program_id, change.pass_id)
            .await
            .map_err(|err| err.to_string())?;
        let mut failure = None;
        for (device, push_token) in registered {
            match self.push(&push_token).await {
                Push::Delivered => {}
                Push::Gone => {
                    if let Err(err) = devices::forget_device(pool, &device, &push_token).await {
                        failure.get_or_insert(err.to_string());
                    }
                }
                Push::Failed(reason) => {
                    failure.get_or_insert(reason);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}
