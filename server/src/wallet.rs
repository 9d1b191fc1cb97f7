//! Members' wallet passes. Provisioning goes through a [`WalletProvider`]: the built-in one is the member's
//! pass page; [`Webhook`] announces each claimed pass to an external wallet service over HTTP.
//!
//! Announcements go through the `wallet_outbox` table, written by a trigger inside the claim's own
//! transaction, and are delivered here by a worker: so a wallet outage never blocks, fails or undoes a claim,
//! and a claim is never lost. Each worker takes a due row with `for update skip locked` (one program's rows at a
//! time) and holds that lock while it sends, so any number of workers, on any number of servers, never send one row at the same time; a
//! row is marked delivered only after a 2xx answer. Every request carries the row id as its idempotency key,
//! so the receiver can drop the one resend that a crash between its 2xx and our commit would cause.

pub mod apns;
pub mod apple_service;
pub mod devices;
pub mod downloads;
pub mod google;
pub mod outbox;
pub mod pkpass;
pub mod settings;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The wallets the server provisions passes in, as its configuration sets them up; the default sets up none,
/// so no wallet button is shown and nothing is sent.
#[derive(Debug, Clone, Default)]
pub struct WalletConfig {
    pub apple: Option<std::sync::Arc<pkpass::PassSigner>>,
    pub google: Option<std::sync::Arc<google::GoogleWallet>>,
    /// The server's address as phones reach it (`https://loyalty.example`): passes link back to it.
    pub public_url: String,
}

impl WalletConfig {
    /// Where Apple Wallet asks for a pass's updates.
    pub fn apple_web_service_url(&self) -> String {
        format!("{}/wallet/apple", self.public_url.trim_end_matches('/'))
    }

    /// The buttons the pass page shows.
    pub fn buttons(&self) -> app::passes::WalletButtons {
        app::passes::WalletButtons {
            apple: self.apple.is_some(),
            google: self.google.is_some(),
        }
    }
}

/// A claimed pass to provision, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassNotice {
    /// The outbox row's id: the same on every retry, so the receiver can deduplicate.
    pub idempotency_key: String,
    pub event: &'static str,
    pub program_id: Uuid,
    pub external_id: String,
    /// The member's pass page, relative to the dashboard's address.
    pub pass_url: String,
    pub claimed_at: DateTime<Utc>,
}

/// Where members' passes are provisioned.
pub trait WalletProvider: Send + Sync + 'static {
    /// Provisions one pass. `Ok` (with where the pass now is) only once the provider has surely taken it;
    /// `Err` with a short reason, kept for the managers' wallet page, otherwise.
    fn provision(&self, pass: &PassNotice) -> impl Future<Output = Result<String, String>> + Send;
}

/// The built-in provider: the member's own pass page, which exists from the moment the pass does.
#[derive(Debug, Clone, Default)]
pub struct PassPage {
    /// Prefixed to the pass page's path, e.g. `https://loyalty.example`; empty for a relative link.
    pub base_url: String,
}

impl WalletProvider for PassPage {
    async fn provision(&self, pass: &PassNotice) -> Result<String, String> {
        Ok(format!(
            "{}{}",
            self.base_url.trim_end_matches('/'),
            pass.pass_url
        ))
    }
}

/// An external wallet service, told of each claimed pass by an HTTP POST of a [`PassNotice`] as JSON with an
/// `Idempotency-Key` header.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
}

impl Webhook {
    /// A webhook at `url` (https://, or http:// for a relay on the same host), giving up on an attempt after
    /// `timeout`. Its server certificate is checked against the system's roots and, if given, the PEM
    /// certificates in `extra_roots` (a private CA). A URL of any other kind is refused here rather than
    /// failing every delivery later.
    pub fn new(url: &str, timeout: Duration, extra_roots: Option<&Path>) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|err| anyhow::anyhow!("the wallet webhook URL {url:?}: {err}"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "https" | "http") && parsed.has_host(),
            "the wallet webhook URL must be https://host/... (or http:// for a relay on the same host)"
        );
        let mut client = reqwest::Client::builder().timeout(timeout);
        if let Some(path) = extra_roots {
            let pem = std::fs::read(path).with_context(|| {
                format!("reading the webhook's CA certificates {}", path.display())
            })?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
            anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
            client = client.tls_certs_merge(roots);
        }
        Ok(Self {
            client: client.build()?,
            url: parsed.into(),
        })
    }
}

/// Why a delivery got no answer, in a few words for the managers' wallet page.
fn failure_reason(err: &reqwest::Error) -> String {
    if let Some(tls) = loyalty_core::tls::failure(err) {
        return format!("TLS failed: {tls}");
    }
    if err.is_timeout() {
        "no answer in time".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    }
}

impl WalletProvider for Webhook {
    async fn provision(&self, pass: &PassNotice) -> Result<String, String> {
        self.post(&pass.idempotency_key, pass).await?;
        Ok(self.url.clone())
    }
}

/// A pass's balance change as the webhook sends it: every change, for every kind of pass, with the pass's
/// version, which counts its changes, for the receiver to order them by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceNotice {
    /// The change's id: the same on every retry, so the receiver can deduplicate.
    pub idempotency_key: String,
    pub event: &'static str,
    pub program_id: Uuid,
    pub external_id: String,
    pub pass_url: String,
    pub balance: i32,
    pub version: i64,
    pub changed_at: DateTime<Utc>,
}

impl Webhook {
    async fn post<T: Serialize>(&self, idempotency_key: &str, body: &T) -> Result<(), String> {
        let response = self
            .client
            .post(&self.url)
            .header("idempotency-key", idempotency_key)
            .json(body)
            .send()
            .await
            .map_err(|err| failure_reason(&err))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered HTTP {}", status.as_u16()))
        }
    }
}

impl outbox::ChangeSender for Webhook {
    fn channel(&self) -> devices::Channel {
        devices::Channel::Webhook
    }

    async fn send(&self, pool: &PgPool, change: &outbox::PassChange) -> Result<(), String> {
        let pass = devices::pass_by_id(pool, change.program_id, change.pass_id)
            .await
            .map_err(|err| err.to_string())?;
        let notice = BalanceNotice {
            idempotency_key: format!("change-{}", change.change_id),
            event: "pass.balance_changed",
            program_id: change.program_id,
            external_id: pass.external_id,
            pass_url: app::passes::pass_path(&pass.pass_token),
            balance: change.balance,
            version: change.pass_version,
            changed_at: change.changed_at,
        };
        self.post(&notice.idempotency_key, &notice).await
    }
}

/// How long to wait after each failure: `first`, doubling per failure, never more than `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (1 for the first).
    pub fn after(&self, failures: i32) -> Duration {
        let doublings = failures.saturating_sub(1).clamp(0, 30) as u32;
        self.first
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max)
    }
}

/// How a worker runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub backoff: Backoff,
    /// How often an idle worker looks for due rows.
    pub poll: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            backoff: Backoff {
                first: Duration::from_secs(5),
                max: Duration::from_secs(3600),
            },
            poll: Duration::from_secs(1),
        }
    }
}

/// What one delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered { id: i64 },
    Failed { id: i64, error: String },
}

/// How many of the most overdue rows are read to find the programs that have one due.
pub(crate) const DUE_ROWS_LOOKED_AT: i64 = 256;

/// Takes the most overdue undelivered row nobody else holds, sends it, and records the outcome; `None` when
/// nothing is due.
///
/// The row is taken program by program: the programs with the most overdue rows first, then in each the most
/// overdue row nobody holds. A lock is only ever asked of one program's rows, which a Citus cluster keeps on one
/// worker; it refuses `for update` over all of them.
pub async fn deliver_next<P: WalletProvider>(
    pool: &PgPool,
    provider: &P,
    backoff: &Backoff,
) -> Result<Option<Attempt>, sqlx::Error> {
    let programs: Vec<Uuid> = sqlx::query_scalar(
        "select program_id
           from (select program_id, next_attempt_at
                   from public.wallet_outbox
                  where delivered_at is null and next_attempt_at <= now()
                  order by next_attempt_at
                  limit $1) due
          group by program_id
          order by min(next_attempt_at)",
    )
    .bind(DUE_ROWS_LOOKED_AT)
    .fetch_all(pool)
    .await?;
    for program_id in programs {
        if let Some(attempt) = deliver_next_of(pool, provider, backoff, program_id).await? {
            return Ok(Some(attempt));
        }
    }
    Ok(None)
}

/// [`deliver_next`] in one program.
async fn deliver_next_of<P: WalletProvider>(
    pool: &PgPool,
    provider: &P,
    backoff: &Backoff,
    program_id: Uuid,
) -> Result<Option<Attempt>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(Uuid, i64, i32, DateTime<Utc>, String, String)> = sqlx::query_as(
        "select o.program_id, o.id, o.attempts, o.created_at, m.external_id, m.pass_token
           from public.wallet_outbox o
           join public.passes_master m on m.program_id = o.program_id and m.id = o.pass_id
          where o.program_id = $1 and m.program_id = $1
            and o.delivered_at is null and o.next_attempt_at <= now()
          order by o.next_attempt_at
          limit 1
            for update of o skip locked",
    )
    .bind(program_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((program_id, id, attempts, claimed_at, external_id, token)) = row else {
        return Ok(None);
    };
    let notice = PassNotice {
        idempotency_key: id.to_string(),
        event: "pass.claimed",
        program_id,
        external_id,
        pass_url: app::passes::pass_path(&token),
        claimed_at,
    };
    let attempt = match provider.provision(&notice).await {
        Ok(_) => {
            sqlx::query(
                "update public.wallet_outbox
                    set delivered_at = now(), last_attempt_at = now(), last_error = null
                  where program_id = $1 and id = $2",
            )
            .bind(program_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Attempt::Delivered { id }
        }
        Err(error) => {
            let error: String = error.chars().take(500).collect();
            let wait = backoff.after(attempts.saturating_add(1));
            sqlx::query(
                "update public.wallet_outbox
                    set attempts = attempts + 1, last_attempt_at = now(), last_error = $3,
                        next_attempt_at = now() + make_interval(secs => $4)
                  where program_id = $1 and id = $2",
            )
            .bind(program_id)
            .bind(id)
            .bind(&error)
            .bind(wait.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            Attempt::Failed { id, error }
        }
    };
    tx.commit().await?;
    Ok(Some(attempt))
}

/// Delivers the outbox for as long as it runs: everything due, then a look every `poll`.
pub async fn run<P: WalletProvider>(pool: PgPool, provider: P, settings: WorkerSettings) {
    loop {
        match deliver_next(&pool, &provider, &settings.backoff).await {
            Ok(Some(Attempt::Delivered { .. })) => continue,
            Ok(Some(Attempt::Failed { id, error })) => {
                tracing::warn!(id, error, "wallet delivery failed; it will be retried");
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "wallet outbox unavailable"),
        }
        tokio::time::sleep(settings.poll).await;
    }
}

/// Starts a worker on the runtime; abort the handle to stop it.
pub fn spawn<P: WalletProvider>(
    pool: PgPool,
    provider: P,
    settings: WorkerSettings,
) -> JoinHandle<()> {
    tokio::spawn(run(pool, provider, settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_webhook_urls_are_taken() {
        let timeout = Duration::from_secs(1);
        for url in [
            "http://127.0.0.1:9000/passes",
            "https://wallet.example/passes",
        ] {
            assert!(Webhook::new(url, timeout, None).is_ok(), "{url}");
        }
        for url in ["ftp://wallet.example/", "https://", "not a url", ""] {
            assert!(Webhook::new(url, timeout, None).is_err(), "{url}");
        }
    }

    #[test]
    fn a_webhook_ca_file_must_hold_certificates() {
        let timeout = Duration::from_secs(1);
        let dir = std::env::temp_dir().join(format!("webhook-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let url = "https://wallet.example/passes";
        let missing = Webhook::new(url, timeout, Some(&dir.join("missing.pem"))).unwrap_err();
        assert!(
            format!("{missing:#}").contains("missing.pem"),
            "{missing:#}"
        );
        let err = Webhook::new(url, timeout, Some(&empty)).unwrap_err();
        assert!(format!("{err:#}").contains("empty.pem"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_the_cap() {
        let backoff = Backoff {
            first: Duration::from_secs(5),
            max: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=6).map(|n| backoff.after(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff.after(i32::MAX), Duration::from_secs(60));
    }
}
