//! Voiding a transaction from the history, with JavaScript or as a plain form post that comes back to the page
//! it was sent from.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::error::VOID_REASON_MAX_CHARS;
use loyalty_core::wire::LedgerEntry;

use super::HISTORY_PATH;

/// Voids a transaction with a compensating entry and returns that entry. Managers only.
#[server(endpoint = "void")]
pub async fn void_transaction(
    csrf: String,
    transaction_id: i64,
    reason: String,
) -> Result<LedgerEntry, LoyaltyError> {
    use crate::request::{answer, is_form_post, manager, pool, staff_for_change};
    answer(
        async {
            let outcome = async {
                let me = manager(staff_for_change(&csrf)?)?;
                let reason = reason.trim();
                if reason.is_empty() || reason.chars().count() > VOID_REASON_MAX_CHARS {
                    return Err(LoyaltyError::InvalidVoidReason);
                }
                super::db::void(&pool()?, me.program_id, Some(me.id), transaction_id, reason).await
            }
            .await;
            if is_form_post() {
                let referer = use_context::<axum::http::request::Parts>().and_then(|parts| {
                    parts
                        .headers
                        .get(axum::http::header::REFERER)
                        .and_then(|r| r.to_str().ok())
                        .map(str::to_owned)
                });
                leptos_axum::redirect(&void_return_path(
                    referer.as_deref(),
                    transaction_id,
                    &outcome,
                ));
            }
            outcome
        }
        .await,
    )
}

/// Query parameters that report a void's outcome to a page loaded without JavaScript.
const OUTCOME_PARAMS: [&str; 3] = ["voided", "void_error", "balance"];

/// Where a plain form post of a void goes back to: the history page the manager was on (its filters and
/// page), with the outcome in the query string. Only codes travel, never text, so a link cannot make the
/// page say something of its own.
pub fn void_return_path(
    referer: Option<&str>,
    transaction_id: i64,
    outcome: &Result<LedgerEntry, LoyaltyError>,
) -> String {
    let query = referer
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|slash| &rest[slash..]))
        .and_then(|path| path.split_once('?'))
        .filter(|(path, _)| *path == HISTORY_PATH)
        .map_or("", |(_, query)| query);
    let mut params: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !OUTCOME_PARAMS.contains(&pair.split('=').next().unwrap_or("")))
        .map(str::to_owned)
        .collect();
    match outcome {
        Ok(_) => params.push(format!("voided={transaction_id}")),
        Err(err) => {
            params.push(format!("void_error={}", err.code()));
            if let LoyaltyError::InsufficientFunds { balance }
            | LoyaltyError::BalanceLimit { balance } = err
            {
                params.push(format!("balance={balance}"));
            }
        }
    }
    format!("{HISTORY_PATH}?{}", params.join("&"))
}

/// The outcome [`void_return_path`] put in the query string, if any; `param` reads one query parameter.
pub fn void_outcome_from_query(
    param: impl Fn(&str) -> Option<String>,
) -> Option<Result<i64, LoyaltyError>> {
    if let Some(id) = param("voided").and_then(|id| id.parse().ok()) {
        return Some(Ok(id));
    }
    let code = param("void_error")?;
    let balance = param("balance").and_then(|b| b.parse::<i64>().ok());
    let mut fields = serde_json::Map::new();
    if let Some(balance) = balance {
        fields.insert("balance".into(), balance.into());
    }
    Some(Err(
        LoyaltyError::from_code(&code, fields).unwrap_or(LoyaltyError::Internal)
    ))
}
