//! The server's HTTP API, as the counter terminal uses it: form-encoded POSTs in, JSON out, the session in a
//! cookie and every refusal as the server's own [`LoyaltyError`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{
    Member, MemberDetail, PointsReceipt, Reward, ScanOutcome, StaffSession, TxType,
};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// How long one request may take before the clerk is told the server did not answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One earn or redeem as the clerk confirmed it. The idempotency key is made once per attempt, so sending
/// the same request again can never apply it twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsRequest {
    pub tx_type: TxType,
    pub external_id: String,
    /// The points asked for; for a sale, none until the server has counted them.
    pub points: i64,
    pub note: Option<String>,
    pub idempotency_key: Uuid,
    /// The time of the sale, for an earn sent later than it was taken; `None` is now, by the server's clock.
    pub sold_at: Option<DateTime<Utc>>,
    /// A sale's amount as the clerk typed it ("12.50"): the server counts its points under the program's rules.
    pub sale_amount: Option<String>,
    /// The reward of the catalog this redeem is for: the server takes its cost and its stock.
    pub reward: Option<RewardChoice>,
}

/// A reward as a redeem names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardChoice {
    pub id: i64,
    pub name: String,
}

impl PointsRequest {
    /// A new attempt, with a fresh idempotency key.
    pub fn new(tx_type: TxType, external_id: &str, points: i64) -> Self {
        Self {
            tx_type,
            external_id: external_id.to_owned(),
            points,
            note: None,
            idempotency_key: Uuid::new_v4(),
            sold_at: None,
            sale_amount: None,
            reward: None,
        }
    }

    /// The earn of a sale of `amount` in the program's currency.
    pub fn sale(external_id: &str, amount: &str) -> Self {
        Self {
            sale_amount: Some(amount.to_owned()),
            ..Self::new(TxType::Earn, external_id, 0)
        }
    }

    /// The redeem of one `reward`.
    pub fn reward(external_id: &str, reward: &Reward) -> Self {
        Self {
            reward: Some(RewardChoice {
                id: reward.id,
                name: reward.name.clone(),
            }),
            ..Self::new(TxType::Redeem, external_id, reward.points_cost)
        }
    }
}

/// A client of one server, shared by every request task of the run; cloning it shares the session.
#[derive(Debug, Clone)]
pub struct Client {
    /// Keeps the server's cookies, the session's among them, in its own cookie store.
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
    /// The session's CSRF token, sent back with every change.
    csrf_token: Arc<Mutex<Option<String>>>,
}

impl Client {
    pub fn new(base_url: &str) -> Result<Self, LoyaltyError> {
        Self::with_timeout(base_url, REQUEST_TIMEOUT)
    }

    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, LoyaltyError> {
        Self::with_roots(base_url, timeout, Vec::new())
    }

    /// A client that, over https://, also trusts the certificates in `extra_roots` (a store's private CA)
    /// beside the system's roots.
    pub fn with_roots(
        base_url: &str,
        timeout: Duration,
        extra_roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, LoyaltyError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // An answer is JSON or an error: a redirect means this is not the API it should be.
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .tls_certs_merge(extra_roots)
            .build()
            .map_err(|e| network(e, timeout))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
            csrf_token: Arc::default(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<StaffSession, LoyaltyError> {
        let session: StaffSession = self
            .post("/api/sign_in", &[("email", email), ("password", password)])
            .await?;
        self.remember_csrf(&session);
        Ok(session)
    }

    pub async fn me(&self) -> Result<StaffSession, LoyaltyError> {
        let session: StaffSession = self.post("/api/me", &[]).await?;
        self.remember_csrf(&session);
        Ok(session)
    }

    pub async fn sign_out(&self) -> Result<(), LoyaltyError> {
        let csrf = self.csrf();
        // The answer also expires the session's cookie, which the cookie store then forgets.
        self.send("/api/sign_out", &[("csrf", &csrf)]).await?;
        *self.lock_csrf() = None;
        Ok(())
    }

    pub async fn scan(&self, code: &str) -> Result<ScanOutcome, LoyaltyError> {
        let csrf = self.csrf();
        self.post("/api/scan", &[("csrf", &csrf), ("code", code)])
            .await
    }

    pub async fn member(&self, external_id: &str) -> Result<MemberDetail, LoyaltyError> {
        self.post("/api/member", &[("external_id", external_id)])
            .await
    }

    pub async fn enrol(&self) -> Result<Member, LoyaltyError> {
        let csrf = self.csrf();
        self.post("/api/enrol", &[("csrf", &csrf)]).await
    }

    /// Returns `points` of ledger row `transaction_id`; sent again with the same key, it applies once.
    pub async fn reverse(
        &self,
        transaction_id: i64,
        points: i64,
        idempotency_key: &str,
    ) -> Result<loyalty_core::wire::Reversal, LoyaltyError> {
        let csrf = self.csrf();
        let (row, points) = (transaction_id.to_string(), points.to_string());
        self.post(
            "/api/reverse",
            &[
                ("csrf", csrf.as_str()),
                ("transaction_id", row.as_str()),
                ("points", points.as_str()),
                ("idempotency_key", idempotency_key),
            ],
        )
        .await
    }

    /// Gives a member a phone number or email; the answer is the hint the program keeps of it.
    pub async fn set_contact(
        &self,
        external_id: &str,
        contact: &str,
    ) -> Result<loyalty_core::wire::ContactHint, LoyaltyError> {
        let csrf = self.csrf();
        self.post(
            "/api/set_contact",
            &[
                ("csrf", csrf.as_str()),
                ("external_id", external_id),
                ("contact", contact),
            ],
        )
        .await
    }

    /// The program's rewards on offer, cheapest first.
    pub async fn rewards(&self) -> Result<Vec<Reward>, LoyaltyError> {
        self.post("/api/rewards", &[]).await
    }

    /// Earns or redeems: points, a sale or a reward. Sending the same request again answers with
    /// `replayed: true` instead of applying it.
    pub async fn points(&self, request: &PointsRequest) -> Result<PointsReceipt, LoyaltyError> {
        let csrf = self.csrf();
        let points = request.points.to_string();
        let key = request.idempotency_key.to_string();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("external_id", request.external_id.as_str()),
            ("idempotency_key", key.as_str()),
        ];
        let reward_id = request.reward.as_ref().map(|r| r.id.to_string());
        let path = match (&request.sale_amount, &reward_id, request.tx_type) {
            (Some(amount), None, TxType::Earn) => {
                form.push(("amount", amount.as_str()));
                "/api/earn_sale"
            }
            (None, Some(reward_id), TxType::Redeem) => {
                form.push(("reward_id", reward_id.as_str()));
                "/api/redeem_reward"
            }
            (None, None, TxType::Earn | TxType::Redeem) => {
                form.push(("points", points.as_str()));
                if let Some(note) = request.note.as_deref().filter(|n| !n.is_empty()) {
                    form.push(("note", note));
                }
                if request.tx_type == TxType::Earn {
                    "/api/earn"
                } else {
                    "/api/redeem"
                }
            }
            _ => return Err(LoyaltyError::InvalidType),
        };
        let sold_at = request
            .sold_at
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Micros, true));
        if let Some(sold_at) = sold_at.as_deref() {
            form.push(("sold_at", sold_at));
        }
        self.post(path, &form).await
    }

    /// Whether the server and its database answer at all.
    pub async fn healthy(&self) -> bool {
        match self
            .http
            .get(format!("{}/healthz", self.base_url))
            .send()
            .await
        {
            Ok(response) => response.status() == StatusCode::OK,
            Err(_) => false,
        }
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<T, LoyaltyError> {
        let body = self.send(path, form).await?;
        serde_json::from_slice(&body).map_err(|e| LoyaltyError::Network {
            detail: format!("the server's answer could not be read ({e})"),
        })
    }

    /// Sends one request and returns the body of a successful answer, or the server's error.
    async fn send(&self, path: &str, form: &[(&str, &str)]) -> Result<Vec<u8>, LoyaltyError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| network(e, self.timeout))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| network(e, self.timeout))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        Err(
            serde_json::from_slice::<LoyaltyError>(&body).unwrap_or_else(|_| {
                LoyaltyError::Network {
                    detail: format!("the server answered {status}"),
                }
            }),
        )
    }

    fn lock_csrf(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // The token is a plain string: one a panicking task left behind is still whole.
        self.csrf_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn csrf(&self) -> String {
        self.lock_csrf().clone().unwrap_or_default()
    }

    fn remember_csrf(&self, session: &StaffSession) {
        *self.lock_csrf() = Some(session.csrf_token.clone());
    }
}

/// A request that got no usable answer, in words a clerk can act on.
fn network(e: reqwest::Error, timeout: Duration) -> LoyaltyError {
    if let Some(tls) = loyalty_core::tls::failure(&e) {
        return LoyaltyError::Network {
            detail: format!("the server's certificate was refused ({tls})"),
        };
    }
    let detail = if e.is_timeout() {
        format!("no answer within {} seconds", timeout.as_secs_f32())
    } else if e.is_connect() {
        "no connection could be made".to_owned()
    } else {
        "the connection was lost before the answer came".to_owned()
    };
    LoyaltyError::Network { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_is_kept_without_its_trailing_slash() {
        let client = Client::new("http://127.0.0.1:9/").unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:9");
    }

    #[test]
    fn every_attempt_gets_its_own_key() {
        let first = PointsRequest::new(TxType::Earn, "MBR-ABCD2345", 50);
        let second = PointsRequest::new(TxType::Earn, "MBR-ABCD2345", 50);
        assert_ne!(first.idempotency_key, second.idempotency_key);
        assert_eq!(first.idempotency_key.get_version_num(), 4);
    }
}
