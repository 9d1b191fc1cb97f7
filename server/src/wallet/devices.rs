//! The wallet side of the database: which channels get deliveries, the passes a wallet asks for, and the
//! devices that hold them. Every change goes through a hardened function.

use app::db::db_error;
use loyalty_core::{LoyaltyError, Result};
use serde::Deserialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// A wallet service each pass change is delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Webhook,
    Apple,
    Google,
}

impl Channel {
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Apple => "apple",
            Self::Google => "google",
        }
    }
}

/// A pass as a wallet shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WalletPass {
    /// The pass's serial number in Apple Wallet and its object id in Google Wallet.
    pub pass_id: Uuid,
    pub program_id: Uuid,
    pub program_name: String,
    pub external_id: String,
    pub points: i32,
    pub pass_version: i64,
    /// The authentication token Apple Wallet sends back: a secret, never logged.
    pub wallet_token: String,
    /// The pass page's token.
    pub pass_token: String,
}

/// The query of a [`WalletPass`], with its condition.
macro_rules! wallet_pass {
    ($condition:literal) => {
        concat!(
            "select m.id as pass_id, m.program_id, p.name as program_name, m.external_id, m.points,
                    m.pass_version, m.wallet_token, m.pass_token
               from public.passes_master m join public.programs p on p.id = m.program_id ",
            $condition
        )
    };
}

/// The one answer a hardened function gives, its refusal as the domain's error.
fn checked(answer: serde_json::Value) -> Result<serde_json::Value> {
    if answer["success"] == true {
        return Ok(answer);
    }
    let code = answer["error"].as_str().unwrap_or_default();
    Err(
        LoyaltyError::from_code(code, serde_json::Map::new()).unwrap_or_else(|| {
            tracing::error!(code, "unexpected refusal from a database function");
            LoyaltyError::Internal
        }),
    )
}

/// Queues deliveries, from now on, for these channels only.
pub async fn set_channels(db: impl PgExecutor<'_>, channels: &[Channel]) -> Result<()> {
    let names: Vec<&str> = channels.iter().map(|c| c.as_sql()).collect();
    let answer = sqlx::query_scalar("select public.set_wallet_channels($1)")
        .bind(&names)
        .fetch_one(db)
        .await
        .map_err(db_error)?;
    checked(answer).map(drop)
}

/// A pass by its pass page's token.
pub async fn pass_by_page_token(db: impl PgExecutor<'_>, token: &str) -> Result<WalletPass> {
    let mut found: Vec<WalletPass> = sqlx::query_as(wallet_pass!(
        "where m.pass_token = $1 and m.replaced_at is null limit 2"
    ))
    .bind(token)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    // As the pass page: a token found in two programs opens neither.
    match found.len() {
        1 => Ok(found.remove(0)),
        _ => Err(LoyaltyError::MemberNotFound),
    }
}

/// A pass of a program by its member's external id.
pub async fn pass_of_member(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    external_id: &str,
) -> Result<WalletPass> {
    sqlx::query_as(wallet_pass!(
        "where m.program_id = $1 and m.external_id = $2"
    ))
    .bind(program_id)
    .bind(external_id)
    .fetch_optional(db)
    .await
    .map_err(db_error)?
    .ok_or(LoyaltyError::MemberNotFound)
}

/// A pass by its id (a delivery's), for the workers.
pub async fn pass_by_id(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    pass_id: Uuid,
) -> Result<WalletPass> {
    sqlx::query_as(wallet_pass!("where m.program_id = $1 and m.id = $2"))
        .bind(program_id)
        .bind(pass_id)
        .fetch_optional(db)
        .await
        .map_err(db_error)?
        .ok_or(LoyaltyError::MemberNotFound)
}

/// The pass a wallet request names, if `wallet_token` is its authentication token.
pub async fn authenticated_pass(
    db: impl PgExecutor<'_>,
    pass_id: Uuid,
    wallet_token: &str,
) -> Result<WalletPass> {
    sqlx::query_as(wallet_pass!(
        "where m.id = (public.wallet_pass_of($1, $2)).id"
    ))
    .bind(pass_id)
    .bind(wallet_token)
    .fetch_optional(db)
    .await
    .map_err(db_error)?
    .ok_or(LoyaltyError::WalletUnauthorized)
}

/// Registers a device for a pass: `true` when the registration is new.
pub async fn register_device(
    db: impl PgExecutor<'_>,
    pass_id: Uuid,
    wallet_token: &str,
    device_library_id: &str,
    push_token: &str,
) -> Result<bool> {
    let answer = sqlx::query_scalar("select public.register_wallet_device($1, $2, $3, $4)")
        .bind(pass_id)
        .bind(wallet_token)
        .bind(device_library_id)
        .bind(push_token)
        .fetch_one(db)
        .await
        .map_err(db_error)?;
    Ok(checked(answer)?["created"] == true)
}

pub async fn unregister_device(
    db: impl PgExecutor<'_>,
    pass_id: Uuid,
    wallet_token: &str,
    device_library_id: &str,
) -> Result<()> {
    let answer = sqlx::query_scalar("select public.unregister_wallet_device($1, $2, $3)")
        .bind(pass_id)
        .bind(wallet_token)
        .bind(device_library_id)
        .fetch_one(db)
        .await
        .map_err(db_error)?;
    checked(answer).map(drop)
}

/// The passes on a device changed since a tag, and the tag to ask from next time: the versions of the device's
/// passes it has now been told about (`None` when the device holds none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChangedPasses {
    pub serial_numbers: Vec<Uuid>,
    pub last_updated: Option<String>,
}

pub async fn passes_changed_since(
    db: impl PgExecutor<'_>,
    device_library_id: &str,
    since: Option<&str>,
) -> Result<ChangedPasses> {
    let answer: serde_json::Value =
        sqlx::query_scalar("select public.wallet_passes_changed_since($1, $2)")
            .bind(device_library_id)
            .bind(since)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
    serde_json::from_value(answer).map_err(|err| {
        tracing::error!(error = %err, "malformed answer of wallet_passes_changed_since");
        LoyaltyError::Internal
    })
}

/// A device whose push token APNs no longer takes: `true` if it was forgotten.
pub async fn forget_device(
    db: impl PgExecutor<'_>,
    device_library_id: &str,
    push_token: &str,
) -> Result<bool> {
    let answer = sqlx::query_scalar("select public.forget_wallet_device($1, $2)")
        .bind(device_library_id)
        .bind(push_token)
        .fetch_one(db)
        .await
        .map_err(db_error)?;
    Ok(checked(answer)?["forgotten"] == true)
}

/// The devices a pass is registered on: (device library id, push token).
pub async fn devices_of(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    pass_id: Uuid,
) -> Result<Vec<(String, String)>> {
    sqlx::query_as(
        "select d.device_library_id, d.push_token
           from public.wallet_registrations r
           join public.wallet_devices d
             on d.program_id = r.program_id and d.device_library_id = r.device_library_id
          where r.program_id = $1 and r.pass_id = $2
          order by d.device_library_id",
    )
    .bind(program_id)
    .bind(pass_id)
    .fetch_all(db)
    .await
    .map_err(db_error)
}
