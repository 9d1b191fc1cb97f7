//! The point of sale: earn and redeem.

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PointsReceipt, TxType};

#[cfg(feature = "ssr")]
pub mod db;

#[cfg(feature = "ssr")]
async fn apply(
    csrf: String,
    external_id: String,
    points: String,
    note: Option<String>,
    idempotency_key: String,
    sold_at: Option<String>,
    tx_type: TxType,
) -> Result<PointsReceipt, LoyaltyError> {
    use crate::request::{answer, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let session = session_key()?;
            let (points, sold_at) = match read_amount_and_sale_time(&points, sold_at.as_deref()) {
                Ok(read) => read,
                Err(refusal) => {
                    // Whoever is not signed in hears that first, whatever they sent.
                    session.check(&counter_pool()?, &csrf).await?;
                    return Err(refusal);
                }
            };
            let note = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
            let key = idempotency_key.trim();
            let request = db::PointsRequest {
                external_id: external_id.trim(),
                tx_type,
                points,
                note,
                idempotency_key: (!key.is_empty()).then_some(key),
                sold_at,
            };
            let receipt = db::apply_points(&counter_pool()?, &session, &csrf, &request).await?;
            redirect_form_post(&format!(
                "/member/{}?receipt={}",
                receipt.external_id, receipt.transaction_id
            ));
            Ok(receipt)
        }
        .await,
    )
}

/// The amount and the time of the sale as the form gives them; an empty time is none.
#[cfg(feature = "ssr")]
fn read_amount_and_sale_time(
    points: &str,
    sold_at: Option<&str>,
) -> Result<(i64, Option<chrono::DateTime<chrono::Utc>>), LoyaltyError> {
    let points = points
        .trim()
        .parse::<i64>()
        .map_err(|_| LoyaltyError::InvalidAmount)?;
    Ok((points, read_sale_time(sold_at)?))
}

/// The time of the sale as a form gives it (RFC 3339); an empty time is none.
#[cfg(feature = "ssr")]
fn read_sale_time(
    sold_at: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, LoyaltyError> {
    match sold_at.map(str::trim).filter(|at| !at.is_empty()) {
        None => Ok(None),
        Some(at) => chrono::DateTime::parse_from_rfc3339(at)
            .map(|at| Some(at.to_utc()))
            .map_err(|_| LoyaltyError::InvalidSaleTime),
    }
}

/// A manager adds points typed by hand, saying why in `note` (the database refuses clerks and a missing reason:
/// a clerk's points come from a sale or a reward). Retrying with the same idempotency key never adds them twice.
/// `sold_at` (RFC 3339) is when it happened, where earlier than now.
#[leptos::server(endpoint = "earn")]
pub async fn earn(
    csrf: String,
    external_id: String,
    points: String,
    note: Option<String>,
    idempotency_key: String,
    sold_at: Option<String>,
) -> Result<PointsReceipt, LoyaltyError> {
    apply(
        csrf,
        external_id,
        points,
        note,
        idempotency_key,
        sold_at,
        TxType::Earn,
    )
    .await
}

/// A manager takes points typed by hand, never below zero, saying why in `note`. Retrying with the same
/// idempotency key never takes them twice.
#[leptos::server(endpoint = "redeem")]
pub async fn redeem(
    csrf: String,
    external_id: String,
    points: String,
    note: Option<String>,
    idempotency_key: String,
) -> Result<PointsReceipt, LoyaltyError> {
    apply(
        csrf,
        external_id,
        points,
        note,
        idempotency_key,
        None,
        TxType::Redeem,
    )
    .await
}

/// Earns the points of a sale: the database reads `amount` ("12.50") in the program's currency and counts the
/// points under the program's rate and its best promotion at the time of the sale (`sold_at`, RFC 3339, or
/// now). Retrying with the same idempotency key never earns twice.
#[leptos::server(endpoint = "earn_sale")]
pub async fn earn_sale(
    csrf: String,
    external_id: String,
    amount: String,
    idempotency_key: String,
    sold_at: Option<String>,
) -> Result<PointsReceipt, LoyaltyError> {
    use crate::request::{answer, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let session = session_key()?;
            let sold_at = match read_sale_time(sold_at.as_deref()) {
                Ok(sold_at) => sold_at,
                Err(refusal) => {
                    session.check(&counter_pool()?, &csrf).await?;
                    return Err(refusal);
                }
            };
            let key = idempotency_key.trim();
            let sale = db::Sale {
                external_id: external_id.trim(),
                amount: amount.trim(),
                idempotency_key: (!key.is_empty()).then_some(key),
                sold_at,
            };
            let receipt = db::earn_from_sale(&counter_pool()?, &session, &csrf, &sale).await?;
            redirect_form_post(&format!(
                "/member/{}?receipt={}",
                receipt.external_id, receipt.transaction_id
            ));
            Ok(receipt)
        }
        .await,
    )
}

/// A manager's adjustment of one member's balance: points added or taken by hand, each with its reason. Each
/// rendering carries its own idempotency keys, so a double click, a reload or a resubmitted form applies once.
#[leptos::component]
pub fn AdjustBalance(
    external_id: String,
    form_key: String,
    earn: leptos::prelude::ServerAction<Earn>,
    redeem: leptos::prelude::ServerAction<Redeem>,
) -> impl leptos::IntoView {
    use leptos::prelude::*;
    let pending = move || earn.pending().get() || redeem.pending().get();
    let forms = [
        (
            "earn",
            "Points to add",
            "Add points",
            format!("{form_key}-earn"),
        ),
        (
            "redeem",
            "Points to take",
            "Take points",
            format!("{form_key}-redeem"),
        ),
    ];
    let [earn_form, redeem_form] = forms.map(|(kind, label, button, key)| {
        let points_id = format!("{kind}-points");
        let note_id = format!("{kind}-note");
        let fields = view! {
            <crate::auth::CsrfField />
            <input type="hidden" name="external_id" value=external_id.clone() />
            <input type="hidden" name="idempotency_key" value=key />
            <label for=points_id.clone()>{label}</label>
            <input
                id=points_id
                name="points"
                type="number"
                min="1"
                max="1000000"
                step="1"
                inputmode="numeric"
                required
            />
            <label for=note_id.clone()>"Reason"</label>
            <input id=note_id name="note" type="text" minlength="3" maxlength="500" required />
            <button type="submit" class=kind disabled=pending>
                {button}
            </button>
        };
        (kind, fields)
    });
    view! {
        <details class="adjust">
            <summary>"Adjust the balance by hand (managers)"</summary>
            <div class="pos">
                <ActionForm action=earn attr:class="pos-form" attr:data-kind=earn_form.0>
                    {earn_form.1}
                </ActionForm>
                <ActionForm action=redeem attr:class="pos-form" attr:data-kind=redeem_form.0>
                    {redeem_form.1}
                </ActionForm>
            </div>
        </details>
    }
}

/// The sale form, first at the counter: the clerk types what the customer paid and the database counts the
/// points. Its idempotency key is the rendering's, so a double click or a resubmitted form earns once.
#[leptos::component]
pub fn SaleForm(
    external_id: String,
    form_key: String,
    currency: String,
    sale: leptos::prelude::ServerAction<EarnSale>,
) -> impl leptos::IntoView {
    use leptos::prelude::*;
    view! {
        <ActionForm action=sale attr:class="pos-form sale-form" attr:data-kind="sale">
            <crate::auth::CsrfField />
            <input type="hidden" name="external_id" value=external_id />
            <input type="hidden" name="idempotency_key" value=format!("{form_key}-sale") />
            <label for="sale-amount">"Sale amount (" {currency} ")"</label>
            <input
                id="sale-amount"
                name="amount"
                inputmode="decimal"
                pattern="[0-9]+([.,][0-9]{1,3})?"
                placeholder="12.50"
                autocomplete="off"
                required
            />
            <button type="submit" class="earn" disabled=move || sale.pending().get()>
                "Record the sale"
            </button>
        </ActionForm>
    }
}

/// An earn or redeem that got no answer: the server could not be reached, or failed. The form keeps its
/// idempotency key, so pressing its button again once the server is back applies the request at most once.
#[leptos::component]
pub fn Unanswered(error: LoyaltyError) -> impl leptos::IntoView {
    use leptos::prelude::*;
    let headline = if error.unreachable() {
        "The server cannot be reached."
    } else {
        "The server did not finish this request."
    };
    view! {
        <div class="outcome unanswered" data-outcome="unanswered" data-code=error.code()>
            <p class="big">{headline}</p>
            <p>{error.to_string()}</p>
            <p>
                "It may or may not have gone through. Press the same button again when the server is back: "
                "it is sent as the same request, which is never applied twice."
            </p>
        </div>
    }
}

/// What a receipt says to the clerk.
pub fn describe_receipt(receipt: &PointsReceipt) -> String {
    let verb = match receipt.tx_type {
        TxType::Earn => "Earned",
        TxType::Redeem => "Redeemed",
        TxType::Expire => "Expired",
    };
    let again = if receipt.replayed {
        " (already recorded; not applied again)"
    } else {
        ""
    };
    let reward = match (&receipt.reward, &receipt.rule) {
        (Some(reward), _) => format!(" for {reward}"),
        (None, Some(rule)) => format!(" ({rule})"),
        (None, None) => String::new(),
    };
    format!(
        "{verb} {} points{reward}. New balance: {} points{again}.",
        receipt.points, receipt.new_balance
    )
}
