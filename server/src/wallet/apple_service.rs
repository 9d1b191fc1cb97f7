//! The pass update service Apple Wallet calls, at the pass's `webServiceURL`: devices register and unregister
//! for a pass with its authentication token, ask which of their passes changed since a tag, fetch the latest
//! pass, and send their logs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use loyalty_core::LoyaltyError;
use serde::Deserialize;
use uuid::Uuid;

use super::devices;
use crate::AppState;

/// The longest log line kept from a device.
const LOG_LINE_CHARS: usize = 500;
/// The most log lines kept from one request.
const LOG_LINES: usize = 20;

/// The service's routes, under the path of [`super::WalletConfig::apple_web_service_url`].
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/wallet/apple/v1/devices/{device}/registrations/{pass_type}/{serial}",
            post(register).delete(unregister),
        )
        .route(
            "/wallet/apple/v1/devices/{device}/registrations/{pass_type}",
            get(changed_since),
        )
        .route(
            "/wallet/apple/v1/passes/{pass_type}/{serial}",
            get(latest_pass),
        )
        .route("/wallet/apple/v1/log", post(log))
}

/// An answer with no body: Apple's service speaks in status codes.
fn status(code: StatusCode) -> Response {
    code.into_response()
}

fn refused(err: LoyaltyError) -> Response {
    match err {
        LoyaltyError::WalletUnauthorized => status(StatusCode::UNAUTHORIZED),
        LoyaltyError::InvalidWalletDevice => status(StatusCode::BAD_REQUEST),
        LoyaltyError::Unavailable => status(StatusCode::SERVICE_UNAVAILABLE),
        _ => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The pass type a request names is this server's, when Apple Wallet is set up.
fn ours(state: &AppState, pass_type: &str) -> bool {
    state
        .wallet
        .apple
        .as_ref()
        .is_some_and(|signer| signer.pass_type_id() == pass_type)
}

/// The token of `Authorization: ApplePass <token>`.
fn wallet_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("ApplePass ")
        .map(str::trim)
}

/// The pass a request names and authenticates, or the status to answer with.
fn credentials<'a>(
    state: &AppState,
    headers: &'a HeaderMap,
    pass_type: &str,
    serial: &str,
) -> Result<(Uuid, &'a str), Response> {
    if !ours(state, pass_type) {
        return Err(status(StatusCode::NOT_FOUND));
    }
    match (Uuid::parse_str(serial), wallet_token(headers)) {
        (Ok(pass_id), Some(token)) => Ok((pass_id, token)),
        _ => Err(status(StatusCode::UNAUTHORIZED)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registration {
    push_token: String,
}

async fn register(
    State(state): State<AppState>,
    Path((device, pass_type, serial)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Option<Json<Registration>>,
) -> Response {
    let (pass_id, token) = match credentials(&state, &headers, &pass_type, &serial) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let push_token = body.map(|Json(body)| body.push_token).unwrap_or_default();
    match devices::register_device(&state.pool, pass_id, token, &device, &push_token).await {
        Ok(true) => status(StatusCode::CREATED),
        Ok(false) => status(StatusCode::OK),
        Err(err) => refused(err),
    }
}

async fn unregister(
    State(state): State<AppState>,
    Path((device, pass_type, serial)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let (pass_id, token) = match credentials(&state, &headers, &pass_type, &serial) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    match devices::unregister_device(&state.pool, pass_id, token, &device).await {
        Ok(()) => status(StatusCode::OK),
        Err(err) => refused(err),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Since {
    passes_updated_since: Option<String>,
}

async fn changed_since(
    State(state): State<AppState>,
    Path((device, pass_type)): Path<(String, String)>,
    Query(since): Query<Since>,
) -> Response {
    if !ours(&state, &pass_type) {
        return status(StatusCode::NOT_FOUND);
    }
    // A tag we never gave is read as no tag: the device then gets every pass it holds.
    let since = since.passes_updated_since.as_deref();
    match devices::passes_changed_since(&state.pool, &device, since).await {
        Ok(changed) if changed.serial_numbers.is_empty() => status(StatusCode::NO_CONTENT),
        Ok(changed) => Json(serde_json::json!({
            "serialNumbers": changed.serial_numbers,
            "lastUpdated": changed.last_updated.unwrap_or_default(),
        }))
        .into_response(),
        Err(err) => refused(err),
    }
}

async fn latest_pass(
    State(state): State<AppState>,
    Path((pass_type, serial)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (pass_id, token) = match credentials(&state, &headers, &pass_type, &serial) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let pass = match devices::authenticated_pass(&state.pool, pass_id, token).await {
        Ok(pass) => pass,
        Err(err) => return refused(err),
    };
    let Some(signer) = &state.wallet.apple else {
        return status(StatusCode::NOT_FOUND);
    };
    match signer.pkpass(&pass, &state.wallet.apple_web_service_url()) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, super::pkpass::CONTENT_TYPE.to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "signing a wallet pass failed");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

#[derive(Debug, Deserialize)]
struct Logs {
    #[serde(default)]
    logs: Vec<String>,
}

/// Devices report what went wrong with a pass; kept in the server's log, cut short.
async fn log(Json(logs): Json<Logs>) -> StatusCode {
    for line in logs.logs.iter().take(LOG_LINES) {
        let line: String = line.chars().take(LOG_LINE_CHARS).collect();
        tracing::warn!(line, "Apple Wallet reported");
    }
    StatusCode::OK
}
