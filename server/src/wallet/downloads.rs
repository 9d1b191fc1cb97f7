//! Apple Wallet passes downloaded: by the member from their pass page (the token is the key) and by staff for a
//! member of their program.

use app::request::{Outcome, refusal};
use app::session::Staff;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use loyalty_core::LoyaltyError;
use serde::Deserialize;

use super::devices::{self, WalletPass};
use crate::AppState;

/// The pass, signed, as a download; `WalletNotSetUp` without Apple Wallet settings.
fn pkpass_answer(
    state: &AppState,
    outcome: Option<&Outcome>,
    pass: Result<WalletPass, LoyaltyError>,
) -> Response {
    let signed = pass.and_then(|pass| {
        let signer = state
            .wallet
            .apple
            .as_ref()
            .ok_or(LoyaltyError::WalletNotSetUp)?;
        signer
            .pkpass(&pass, &state.wallet.apple_web_service_url())
            .map(|bytes| (pass.external_id, bytes))
            .map_err(|err| {
                tracing::error!(error = %err, "signing a wallet pass failed");
                LoyaltyError::Internal
            })
    });
    match signed {
        Ok((external_id, bytes)) => {
            if let Some(outcome) = outcome {
                outcome.set(Outcome::OK);
            }
            (
                [
                    (header::CONTENT_TYPE, super::pkpass::CONTENT_TYPE.to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{external_id}.pkpass\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                bytes,
            )
                .into_response()
        }
        Err(err) => refusal(outcome, err),
    }
}

/// `GET /pass/{token}/wallet.pkpass`: the member's own pass.
pub async fn member_pkpass(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let pass = if app::passes::is_pass_token(&token) {
        devices::pass_by_page_token(&state.pool, &token).await
    } else {
        Err(LoyaltyError::MemberNotFound)
    };
    pkpass_answer(&state, None, pass)
}

#[derive(Debug, Deserialize)]
pub struct MemberQuery {
    member: Option<String>,
}

/// `GET /api/wallet.pkpass?member=...`: a member's pass, for a staff member of their program.
pub async fn staff_pkpass(
    State(state): State<AppState>,
    staff: Option<Extension<Staff>>,
    outcome: Option<Extension<Outcome>>,
    Query(query): Query<MemberQuery>,
) -> Response {
    let outcome = outcome.as_ref().map(|o| &o.0);
    let pass = async {
        let Extension(staff) = staff.ok_or(LoyaltyError::NotSignedIn)?;
        let external_id = query.member.unwrap_or_default().trim().to_ascii_uppercase();
        devices::pass_of_member(&state.pool, staff.program_id, &external_id).await
    }
    .await;
    pkpass_answer(&state, outcome, pass)
}

/// `GET /pass/{token}/google-wallet`: a redirect to Google's page that saves the member's pass, signed now.
pub async fn member_google_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let link = async {
        let google = state
            .wallet
            .google
            .as_ref()
            .ok_or(LoyaltyError::WalletNotSetUp)?;
        if !app::passes::is_pass_token(&token) {
            return Err(LoyaltyError::MemberNotFound);
        }
        let pass = devices::pass_by_page_token(&state.pool, &token).await?;
        google.save_link(&pass).map_err(|err| {
            tracing::error!(error = %err, "signing a Google Wallet link failed");
            LoyaltyError::Internal
        })
    }
    .await;
    match link {
        Ok(link) => axum::response::Redirect::to(&link).into_response(),
        Err(err) => refusal(None, err),
    }
}
