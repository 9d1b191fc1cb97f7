//! What every database module shares: the answers of the hardened functions, and how a failed query becomes
//! the domain's error.

use chrono::{DateTime, Utc};
use loyalty_core::LoyaltyError;
use serde::Deserialize;

pub use sqlx::PgPool;

/// The JSON every hardened function answers with: `success`, and either its data or an error code.
#[derive(Debug, Deserialize)]
pub struct RpcAnswer {
    pub success: bool,
    pub error: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub retry_after_secs: Option<u64>,
    pub balance: Option<i64>,
    pub new_balance: Option<i64>,
    pub transaction_id: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub replayed: bool,
    pub data: Option<serde_json::Value>,
}

impl RpcAnswer {
    /// The answer when the call went through, its refusal as the domain's error otherwise.
    pub fn into_result(self) -> Result<Self, LoyaltyError> {
        if self.success {
            return Ok(self);
        }
        let code = self.error.as_deref().unwrap_or("");
        if let ("THROTTLED", Some(retry_after_secs)) = (code, self.retry_after_secs) {
            return Err(LoyaltyError::Throttled { retry_after_secs });
        }
        let err = LoyaltyError::from_rpc(code, self.claimed_at.or(self.voided_at), self.balance);
        if err == LoyaltyError::Internal {
            tracing::error!(code, "unexpected refusal from a database function");
        }
        Err(err)
    }

    /// The `data` object, read as `T`.
    pub fn data<T: for<'de> Deserialize<'de>>(&self) -> Result<T, LoyaltyError> {
        let data = self.data.clone().ok_or(LoyaltyError::Internal)?;
        serde_json::from_value(data).map_err(|e| {
            tracing::error!(error = %e, "malformed data from a database function");
            LoyaltyError::Internal
        })
    }
}

/// A database failure as the domain sees it: unreachable means unavailable; anything else is ours to fix and
/// is logged, never shown.
pub fn db_error(err: sqlx::Error) -> LoyaltyError {
    match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => {
            tracing::warn!(error = %err, "database unavailable");
            LoyaltyError::Unavailable
        }
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
        {
            tracing::warn!(error = %err, "database unavailable");
            LoyaltyError::Unavailable
        }
        // Text PostgreSQL cannot hold (a NUL character) came in with the request: the sender's mistake, not ours.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
            LoyaltyError::InvalidInput {
                message:
                    "The text holds characters that cannot be saved: remove them and try again."
                        .into(),
            }
        }
        _ => {
            tracing::error!(error = %err, "database error");
            LoyaltyError::Internal
        }
    }
}
