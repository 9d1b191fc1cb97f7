//! Members: their passes, balances and ledgers.

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{Member, MemberDetail};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod db;

/// A member's page: the member, their ledger, and a fresh idempotency key for the point-of-sale forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPageData {
    pub detail: MemberDetail,
    pub form_key: String,
    /// The member's own pass page.
    pub pass_path: String,
    /// The rewards on offer.
    pub rewards: Vec<loyalty_core::wire::Reward>,
    /// The program's currency, in which sales are typed.
    pub currency: String,
    /// The member's Apple Wallet pass for staff to download, where the server signs them.
    pub wallet_pass_path: Option<String>,
    /// Whether the signed-in staff member is a manager, who may adjust the balance by hand.
    pub manager: bool,
}

/// How many ledger rows a member's page shows.
pub const LEDGER_ROWS: i64 = 50;

/// A member of the signed-in staff member's program, with their newest ledger rows.
#[leptos::server(endpoint = "member")]
pub async fn get_member(external_id: String) -> Result<MemberDetail, LoyaltyError> {
    use crate::request::{answer, current_staff, pool};
    answer(
        async {
            let staff = current_staff()?;
            let external_id = external_id.trim().to_ascii_uppercase();
            db::member_detail(&pool()?, staff.program_id, &external_id, LEDGER_ROWS).await
        }
        .await,
    )
}

/// The member page's data, with a new idempotency key for each rendering of its forms.
#[leptos::server(endpoint = "member_page")]
pub async fn load_member_page(external_id: String) -> Result<MemberPageData, LoyaltyError> {
    let detail = get_member(external_id).await?;
    let buttons =
        leptos::prelude::use_context::<crate::passes::WalletButtons>().unwrap_or_default();
    let wallet_pass_path = buttons.apple.then(|| {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("member", &detail.member.external_id)
            .finish();
        format!("{}?{query}", crate::passes::STAFF_PKPASS_PATH)
    });
    let manager = crate::request::current_staff()?.role == loyalty_core::wire::Role::Manager;
    Ok(MemberPageData {
        manager,
        wallet_pass_path,
        pass_path: crate::passes::pass_page_link(detail.member.external_id.clone()).await?,
        rewards: crate::rewards::list_rewards().await?,
        currency: crate::rules::load_program_rules().await?.currency,
        detail,
        form_key: uuid::Uuid::new_v4().to_string(),
    })
}

/// Enrols a customer who has no postcard: a new MBR- pass, with the phone number or email they give, if any.
#[leptos::server(endpoint = "enrol")]
pub async fn enrol(csrf: String, contact: Option<String>) -> Result<Member, LoyaltyError> {
    use crate::request::{answer, contact_key, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = staff_for_change(&csrf)?;
            let member = db::enrol_at_counter(
                &pool()?,
                &contact_key()?,
                staff.program_id,
                staff.id,
                contact.as_deref(),
            )
            .await?;
            redirect_form_post(&format!("/member/{}?enrolled=1", member.external_id));
            Ok(member)
        }
        .await,
    )
}

/// Replaces a member's lost pass with a new one (MBR-): the balance, phone number and email move to it, and the
/// old pass stops working.
#[leptos::server(endpoint = "replace_pass")]
pub async fn replace_pass(csrf: String, external_id: String) -> Result<Member, LoyaltyError> {
    use crate::request::{answer, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let old = external_id.trim().to_ascii_uppercase();
            let member = db::replace_pass(&counter_pool()?, &session_key()?, &csrf, &old).await?;
            redirect_form_post(&format!("/member/{}?replaces={old}", member.external_id));
            Ok(member)
        }
        .await,
    )
}

/// The member page's section for a lost pass: a new pass takes its balance, phone number and email.
#[leptos::component]
fn ReplacePass(external_id: String) -> impl leptos::IntoView {
    use leptos::prelude::*;
    use leptos_router::hooks::use_navigate;

    let replace = ServerAction::<ReplacePass>::new();
    let navigate = use_navigate();
    let old = external_id.clone();
    Effect::new(move |_| {
        if let Some(Ok(member)) = replace.value().get() {
            navigate(
                &format!("/member/{}?replaces={old}", member.external_id),
                Default::default(),
            );
        }
    });
    view! {
        <details class="replace-pass">
            <summary>"Replace a lost pass"</summary>
            <p class="help">
                "Gives the member a new pass (MBR-) with the whole balance, phone number and email. This pass stops working at once: check who you are talking to first."
            </p>
            <ActionForm action=replace>
                <crate::auth::CsrfField />
                <input type="hidden" name="external_id" value=external_id />
                <button type="submit" disabled=move || replace.pending().get()>
                    "Issue a new pass"
                </button>
            </ActionForm>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    replace
                        .value()
                        .get()
                        .and_then(Result::err)
                        .map(|error| view! { <crate::notice::ErrorNotice error /> })
                }}
            </div>
        </details>
    }
}

/// A member's page: balance, how the pass came to be, the point of sale and the ledger.
#[leptos::component]
pub fn MemberPage() -> impl leptos::IntoView {
    use crate::points::{AdjustBalance, Earn, Redeem, describe_receipt};
    use leptos::prelude::*;
    use leptos_router::hooks::{use_params_map, use_query_map};

    let params = use_params_map();
    let query = use_query_map();
    let external_id = move || params.read().get("id").unwrap_or_default();
    let earn = ServerAction::<Earn>::new();
    let redeem = ServerAction::<Redeem>::new();
    let redeem_reward = ServerAction::<crate::rewards::RedeemReward>::new();
    let sale = ServerAction::<crate::points::EarnSale>::new();
    // The latest answer of either form, kept by the browser; a page rendered on the server after a plain
    // form post has only the one answer it was sent back with.
    let last = RwSignal::new(None::<Result<loyalty_core::wire::PointsReceipt, LoyaltyError>>);
    // Counts the answers that settle a request. One that may or may not have gone through leaves the page,
    // and so the forms' idempotency keys, as they are: the clerk's second press sends the same request again.
    let settled = RwSignal::new(0_u64);
    let answered = move |result: Result<loyalty_core::wire::PointsReceipt, LoyaltyError>| {
        if !matches!(&result, Err(e) if e.may_have_gone_through()) {
            settled.update(|n| *n += 1);
        }
        last.set(Some(result));
    };
    Effect::new(move |_| {
        if let Some(result) = earn.value().get() {
            answered(result);
        }
    });
    Effect::new(move |_| {
        if let Some(result) = redeem.value().get() {
            answered(result);
        }
    });
    Effect::new(move |_| {
        if let Some(result) = redeem_reward.value().get() {
            answered(result);
        }
    });
    Effect::new(move |_| {
        if let Some(result) = sale.value().get() {
            answered(result);
        }
    });
    let page = Resource::new(
        move || (external_id(), settled.get()),
        |(id, _)| load_member_page(id),
    );
    view! {
        <section class="member">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(data) => {
                            let MemberPageData {
                                detail,
                                form_key,
                                pass_path,
                                rewards,
                                currency,
                                wallet_pass_path,
                                manager,
                            } = data;
                            let member = detail.member.clone();
                            let banner = query.with_untracked(|q| {
                                if let Some(old) = q.get("replaces") {
                                    Some(format!(
                                        "New pass: it replaces {old}, whose balance it took"
                                    ))
                                } else if q.get("claimed").is_some() {
                                    Some("New member created from a postcard".to_owned())
                                } else if q.get("enrolled").is_some() {
                                    Some("New member enrolled".to_owned())
                                } else {
                                    q.get("receipt")
                                        .and_then(|id| id.parse::<i64>().ok())
                                        .and_then(|id| detail.ledger.iter().find(|e| e.id == id))
                                        .map(|entry| {
                                            describe_receipt(&loyalty_core::wire::PointsReceipt {
                                                external_id: entry.external_id.clone(),
                                                tx_type: entry.tx_type,
                                                points: entry.points,
                                                new_balance: entry.balance_after,
                                                transaction_id: entry.id,
                                                created_at: entry.created_at,
                                                replayed: false,
                                                reward: None,
                                                rule: None,
                                            })
                                        })
                                }
                            });
                            view! {
                                <h1>
                                    "Member " <span class="pass-id">{member.external_id.clone()}</span>
                                </h1>
                                <p class="balance" data-balance=member.points>
                                    <span class="balance-value">{member.points}</span>
                                    " points"
                                </p>
                                {detail
                                    .next_expiry
                                    .map(|(points, on)| {
                                        view! {
                                            <p class="expiry" data-expiry=points>
                                                {format!(
                                                    "{points} points expire on {}.",
                                                    loyalty_core::error::day(&on),
                                                )}
                                            </p>
                                        }
                                    })}
                                {detail
                                    .replaced
                                    .clone()
                                    .map(|(on, by)| {
                                        let href = format!("/member/{by}");
                                        let data = by.clone();
                                        view! {
                                            <p class="replaced" data-replaced=data>
                                                {format!(
                                                    "This pass was replaced on {}: it no longer works. The member's pass is now ",
                                                    loyalty_core::error::day(&on),
                                                )} <a href=href>{by}</a> "."
                                            </p>
                                        }
                                    })}
                                <p class="origin">
                                    "Joined " {loyalty_core::error::day(&member.created_at)} ": "
                                    {member.origin.describe()}
                                </p>
                                <crate::passes::PassLink href=pass_path wallet_pass=wallet_pass_path />
                                {detail
                                    .replaced
                                    .is_none()
                                    .then(|| {
                                        view! {
                                            <ReplacePass external_id=member.external_id.clone() />
                                        }
                                    })}
                                <crate::contacts::ContactDetails
                                    external_id=member.external_id.clone()
                                    contacts=detail.contacts
                                    changed=Callback::new(move |_| settled.update(|n| *n += 1))
                                />
                                <div class="result" role="status" aria-live="polite">
                                    {move || match last
                                        .get()
                                        .or_else(|| earn.value().get())
                                        .or_else(|| redeem.value().get())
                                        .or_else(|| redeem_reward.value().get())
                                        .or_else(|| sale.value().get())
                                    {
                                        Some(Ok(receipt)) => {
                                            view! {
                                                <div class="outcome ok" data-outcome="receipt">
                                                    <p class="big">{describe_receipt(&receipt)}</p>
                                                </div>
                                            }
                                                .into_any()
                                        }
                                        Some(Err(error)) if error.may_have_gone_through() => {
                                            view! { <crate::points::Unanswered error /> }.into_any()
                                        }
                                        Some(Err(error)) => {
                                            view! { <crate::notice::ErrorNotice error /> }.into_any()
                                        }
                                        None => {
                                            banner
                                                .clone()
                                                .map(|text| {
                                                    view! {
                                                        <div class="outcome ok">
                                                            <p class="big">{text}</p>
                                                        </div>
                                                    }
                                                })
                                                .into_any()
                                        }
                                    }}
                                </div>
                                <crate::points::SaleForm
                                    external_id=member.external_id.clone()
                                    form_key=form_key.clone()
                                    currency
                                    sale
                                />
                                <crate::rewards::RewardButtons
                                    external_id=member.external_id.clone()
                                    form_key=form_key.clone()
                                    rewards
                                    balance=member.points
                                    redeem=redeem_reward
                                />
                                <crate::returns::ReturnForm
                                    form_key=form_key.clone()
                                    changed=Callback::new(move |_| settled.update(|n| *n += 1))
                                />
                                {manager
                                    .then(|| {
                                        view! {
                                            <AdjustBalance
                                                external_id=member.external_id.clone()
                                                form_key
                                                earn
                                                redeem
                                            />
                                        }
                                    })}
                                {manager
                                    .then(|| {
                                        view! {
                                            <crate::rights::MemberRights
                                                external_id=member.external_id.clone()
                                                changed=Callback::new(move |_| {
                                                    settled.update(|n| *n += 1)
                                                })
                                            />
                                        }
                                    })}
                                <Ledger entries=detail.ledger />
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

/// A member's ledger, newest first, with the balance after each row.
#[leptos::component]
pub fn Ledger(entries: Vec<loyalty_core::wire::LedgerEntry>) -> impl leptos::IntoView {
    use leptos::prelude::*;
    use loyalty_core::wire::TxType;
    if entries.is_empty() {
        return view! { <p class="empty">"No transactions yet."</p> }.into_any();
    }
    view! {
        <table class="ledger">
            <caption>"Transactions"</caption>
            <thead>
                <tr>
                    <th scope="col">"#"</th>
                    <th scope="col">"When"</th>
                    <th scope="col">"Type"</th>
                    <th scope="col" class="num">"Points"</th>
                    <th scope="col" class="num">"Balance after"</th>
                    <th scope="col">"Note"</th>
                </tr>
            </thead>
            <tbody>
                {entries
                    .into_iter()
                    .map(|entry| {
                        let sign = if entry.tx_type == TxType::Earn { "+" } else { "−" };
                        let kind = if entry.tx_type == TxType::Earn { "earn" } else { "redeem" };
                        let link = match (entry.voids, entry.voided_by) {
                            (Some(id), _) => format!("Void of #{id}"),
                            (_, Some(id)) => format!("Voided by #{id}"),
                            _ => String::new(),
                        };
                        view! {
                            <tr class=kind>
                                <td>{entry.id}</td>
                                <td>{entry.local_at.format("%-d %b %Y %H:%M").to_string()}</td>
                                <td>{entry.tx_type.label()}</td>
                                <td class="num">{sign} {entry.points}</td>
                                <td class="num">{entry.balance_after}</td>
                                <td>{entry.description.unwrap_or_default()} " " <em>{link}</em></td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Enrol a customer who has no postcard.
#[leptos::component]
pub fn EnrolPage() -> impl leptos::IntoView {
    use leptos::prelude::*;
    use leptos_router::hooks::use_navigate;

    let enrol = ServerAction::<Enrol>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(member)) = enrol.value().get() {
            navigate(
                &format!("/member/{}?enrolled=1", member.external_id),
                Default::default(),
            );
        }
    });
    view! {
        <section class="enrol">
            <h1>"Enrol a new member"</h1>
            <p>"For a customer without a postcard: creates a new member pass (MBR-)."</p>
            <ActionForm action=enrol>
                <crate::auth::CsrfField />
                <label for="enrol-contact">"Phone number or email (optional)"</label>
                <input
                    id="enrol-contact"
                    name="contact"
                    type="text"
                    inputmode="email"
                    autocomplete="off"
                    maxlength="254"
                />
                <button type="submit" disabled=move || enrol.pending().get()>
                    "Create member pass"
                </button>
            </ActionForm>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    enrol
                        .value()
                        .get()
                        .and_then(Result::err)
                        .map(|error| view! { <crate::notice::ErrorNotice error /> })
                }}
            </div>
        </section>
    }
}
