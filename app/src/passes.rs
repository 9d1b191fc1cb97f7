//! Member passes as members see them: the public pass page behind an unguessable token, with the QR code a
//! clerk scans at the counter; and, for managers, how the passes' delivery to the wallet service is going.
//!
//! The pass page shows one member's own balance and newest few transactions, and nothing else: it is looked
//! up by its token alone and never takes a program from the request.

use chrono::NaiveDateTime;
use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::TxType;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod db;

/// How many transactions a pass page shows.
pub const PASS_PAGE_ROWS: i64 = 5;

/// What a member sees on their pass page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassView {
    pub program_name: String,
    pub external_id: String,
    pub points: i64,
    /// The QR code of the external id, as an SVG document rendered on the server.
    pub qr_svg: String,
    pub recent: Vec<PassActivity>,
    /// The next points to expire and the day they do, on the program's clock, where the program's points expire.
    pub next_expiry: Option<(i64, chrono::NaiveDate)>,
    /// The pass for Apple Wallet, where the server is set up to sign one.
    pub apple_wallet_href: Option<String>,
    /// The link that saves the pass to Google Wallet, where the server is set up for it.
    pub google_wallet_href: Option<String>,
}

/// The wallet buttons the server's configuration allows: none unless a wallet is set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletButtons {
    pub apple: bool,
    pub google: bool,
}

/// Where a member downloads their pass for Apple Wallet.
pub fn apple_wallet_path(token: &str) -> String {
    format!("/pass/{token}/wallet.pkpass")
}

/// Where a member's "Add to Google Wallet" button leads: the server answers with Google's signed link.
pub fn google_wallet_path(token: &str) -> String {
    format!("/pass/{token}/google-wallet")
}

/// Where staff download a member's pass for Apple Wallet.
pub const STAFF_PKPASS_PATH: &str = "/api/wallet.pkpass";

/// One of the member's own transactions, without staff notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassActivity {
    pub tx_type: TxType,
    pub points: i64,
    /// On the program's clock.
    pub created_at: NaiveDateTime,
}

/// A pass page's path.
pub fn pass_path(token: &str) -> String {
    format!("/pass/{token}")
}

/// Whether a token has the one shape the database gives them (64 lowercase hex characters), checked before
/// any query so garbage costs nothing.
pub fn is_pass_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The QR code of a member's external id: exactly what the scan page resolves.
#[cfg(feature = "ssr")]
pub fn qr_svg(content: &str) -> loyalty_core::Result<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(content.as_bytes()).map_err(|_| LoyaltyError::Internal)?;
    let svg = code
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    // The XML declaration has no place inside an HTML page.
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

/// A member's pass, by its token. No sign-in: the token is the key.
#[server(endpoint = "pass")]
pub async fn get_pass(token: String) -> Result<PassView, LoyaltyError> {
    use crate::request::{answer, pool};
    answer(
        async {
            if !is_pass_token(&token) {
                return Err(LoyaltyError::MemberNotFound);
            }
            let mut pass = db::pass_by_token(&pool()?, &token, PASS_PAGE_ROWS).await?;
            let buttons = use_context::<WalletButtons>().unwrap_or_default();
            if buttons.apple {
                pass.apple_wallet_href = Some(apple_wallet_path(&token));
            }
            if buttons.google {
                pass.google_wallet_href = Some(google_wallet_path(&token));
            }
            Ok(pass)
        }
        .await,
    )
}

/// The pass page's path of a member of the signed-in staff member's program.
#[server(endpoint = "pass_link")]
pub async fn pass_page_link(external_id: String) -> Result<String, LoyaltyError> {
    use crate::request::{answer, current_staff, pool};
    answer(
        async {
            let staff = current_staff()?;
            let external_id = external_id.trim().to_ascii_uppercase();
            let token = db::pass_token(&pool()?, staff.program_id, &external_id).await?;
            Ok(pass_path(&token))
        }
        .await,
    )
}

/// The member's pass: program, QR code, balance and newest transactions. Public, and readable on a phone.
#[component]
pub fn PassPage() -> impl IntoView {
    use leptos_meta::Title;
    use leptos_router::hooks::use_params_map;

    let params = use_params_map();
    let pass = Resource::new(
        move || params.read().get("token").unwrap_or_default(),
        get_pass,
    );
    view! {
        <main class="pass-page">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match pass.await {
                        Ok(pass) => view! { <Title text=pass.program_name.clone() /> <PassCard pass /> }.into_any(),
                        Err(LoyaltyError::MemberNotFound) => {
                            view! {
                                <Title text="Pass not found" />
                                <div class="pass-missing">
                                    <h1>"Pass not found"</h1>
                                    <p>"This link does not lead to a member pass. Check the link you were given."</p>
                                </div>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn PassCard(pass: PassView) -> impl IntoView {
    let recent = if pass.recent.is_empty() {
        view! { <p class="empty">"No points yet: show this code at the counter."</p> }.into_any()
    } else {
        view! {
            <ul class="pass-activity">
                {pass
                    .recent
                    .into_iter()
                    .map(|entry| {
                        let (kind, sign) = match entry.tx_type {
                            TxType::Earn => ("earn", "+"),
                            TxType::Redeem => ("redeem", "−"),
                            TxType::Expire => ("expire", "−"),
                        };
                        view! {
                            <li class=kind>
                                <span>{loyalty_core::error::day(&entry.created_at)}</span>
                                <span class="num">{sign} {entry.points}</span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    let apple = pass.apple_wallet_href.map(|href| {
        view! { <a class="add-to-apple-wallet" href=href rel="nofollow">"Add to Apple Wallet"</a> }
    });
    let google = pass.google_wallet_href.map(|href| {
        view! { <a class="add-to-google-wallet" href=href rel="nofollow">"Add to Google Wallet"</a> }
    });
    let wallet = (apple.is_some() || google.is_some())
        .then(|| view! { <p class="wallet-buttons">{apple} {google}</p> });
    view! {
        <article class="pass-card">
            <h1 class="pass-program">{pass.program_name}</h1>
            <p class="balance" data-balance=pass.points>
                <span class="balance-value">{pass.points}</span>
                " points"
            </p>
            <div class="pass-qr" role="img" aria-label="Your member code" inner_html=pass.qr_svg></div>
            {pass
                .next_expiry
                .map(|(points, on)| {
                    view! {
                        <p class="pass-expiry" data-expiry=points>
                            {format!(
                                "{points} points expire on {}: spend them before then.",
                                loyalty_core::error::day(&on),
                            )}
                        </p>
                    }
                })}
            <p class="pass-id">{pass.external_id}</p>
            <p class="pass-hint">"Show this code at the counter to collect and spend points."</p>
            {wallet}
            <h2>"Recent"</h2>
            {recent}
        </article>
    }
}

/// A link from the staff's member page to the member's own pass page.
#[component]
pub fn PassLink(href: String, wallet_pass: Option<String>) -> impl IntoView {
    let wallet_pass = wallet_pass.map(|href| {
        view! {
            " · "
            <a class="wallet-pass-download" href=href download>"Apple Wallet pass"</a>
        }
    });
    view! {
        <p class="pass-link">
            <a href=href target="_blank" rel="noopener">"Member's pass page"</a>
            {wallet_pass}
        </p>
    }
}

/// Where one claim's announcement to the wallet service stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletDelivery {
    /// The idempotency key the wallet service receives.
    pub id: i64,
    pub external_id: String,
    /// These four on the program's clock.
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

/// The program's wallet deliveries: counts over all of them, and the newest rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletOverview {
    pub pending: i64,
    pub delivered: i64,
    /// Pending deliveries that have failed at least once.
    pub retrying: i64,
    pub rows: Vec<WalletDelivery>,
    /// The balance changes' deliveries, for each wallet channel that has any.
    #[serde(default)]
    pub channels: Vec<ChannelDeliveries>,
}

/// How one wallet channel's deliveries of balance changes stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDeliveries {
    /// `webhook`, `apple` or `google`.
    pub channel: String,
    pub pending: i64,
    /// Pending deliveries that have failed at least once.
    pub retrying: i64,
    pub delivered: i64,
    /// The newest failure's reason, while any delivery is failing.
    pub last_error: Option<String>,
}

/// How many deliveries the wallet page lists.
pub const WALLET_PAGE_ROWS: i64 = 100;

/// The signed-in manager's program's wallet deliveries.
#[server(endpoint = "wallet")]
pub async fn load_wallet() -> Result<WalletOverview, LoyaltyError> {
    use crate::request::{answer, current_staff, manager, pool};
    answer(
        async {
            let staff = manager(current_staff()?)?;
            db::wallet_overview(&pool()?, staff.program_id, WALLET_PAGE_ROWS).await
        }
        .await,
    )
}

/// Managers see whether claimed passes reached the wallet service.
#[component]
pub fn WalletPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| load_wallet());
    let when = |at: NaiveDateTime| at.format("%-d %b %Y %H:%M:%S").to_string();
    view! {
        <section class="wallet">
            <h1>"Wallet deliveries"</h1>
            <p>
                "Each claimed postcard is announced to the wallet service. Failed deliveries are retried, \
                 less and less often, until the service takes them."
            </p>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(overview) => {
                            let rows = overview
                                .rows
                                .into_iter()
                                .map(|row| {
                                    let (state, label) = match (row.delivered_at, row.attempts) {
                                        (Some(_), _) => ("delivered", "Delivered".to_owned()),
                                        (None, 0) => ("pending", "Pending".to_owned()),
                                        (None, n) => ("failing", format!("Failed {n} times")),
                                    };
                                    let next = match row.delivered_at {
                                        Some(at) => format!("delivered {}", when(at)),
                                        None => format!("next try {}", when(row.next_attempt_at)),
                                    };
                                    view! {
                                        <tr class=state data-state=state>
                                            <td>{row.id}</td>
                                            <td class="pass-id">{row.external_id}</td>
                                            <td>{when(row.created_at)}</td>
                                            <td>{label}</td>
                                            <td>{row.last_error.unwrap_or_default()}</td>
                                            <td>{next}</td>
                                        </tr>
                                    }
                                })
                                .collect_view();
                            view! {
                                <p class="wallet-totals">
                                    <span data-pending=overview.pending>{overview.pending} " pending"</span>
                                    " · "
                                    <span data-retrying=overview.retrying>{overview.retrying} " failing"</span>
                                    " · "
                                    <span data-delivered=overview.delivered>{overview.delivered} " delivered"</span>
                                </p>
                                <ChannelTable channels=overview.channels />
                                <table class="ledger wallet-deliveries">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Key"</th>
                                            <th scope="col">"Member"</th>
                                            <th scope="col">"Claimed"</th>
                                            <th scope="col">"State"</th>
                                            <th scope="col">"Last error"</th>
                                            <th scope="col">"Next"</th>
                                        </tr>
                                    </thead>
                                    <tbody>{rows}</tbody>
                                </table>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The balance changes' deliveries, by wallet channel; nothing when no channel has any.
#[component]
fn ChannelTable(channels: Vec<ChannelDeliveries>) -> impl IntoView {
    (!channels.is_empty()).then(|| {
        let rows = channels
            .into_iter()
            .map(|row| {
                let name = row.channel.clone();
                view! {
                    <tr data-channel=row.channel>
                        <td>{name}</td>
                        <td class="num">{row.pending}</td>
                        <td class="num">{row.retrying}</td>
                        <td class="num">{row.delivered}</td>
                        <td>{row.last_error.unwrap_or_default()}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h2>"Balance updates"</h2>
            <table class="ledger wallet-channels">
                <thead>
                    <tr>
                        <th scope="col">"Wallet"</th>
                        <th scope="col">"Pending"</th>
                        <th scope="col">"Failing"</th>
                        <th scope="col">"Delivered"</th>
                        <th scope="col">"Last error"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        }
    })
}
