//! The rewards catalog: managers add, change and retire rewards; a clerk redeems one for a member in one click.
//! Cost, stock and a member's limit per day are kept by `redeem_reward` in the database.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PointsReceipt, Reward};

#[cfg(feature = "ssr")]
pub mod db;

/// Where managers keep the catalog.
pub const REWARDS_PATH: &str = "/rewards";

/// The program's rewards on offer, cheapest first: for the point of sale and the catalog page.
#[server(endpoint = "rewards")]
pub async fn list_rewards() -> Result<Vec<Reward>, LoyaltyError> {
    use crate::request::{answer, current_staff, pool};
    answer(
        async {
            let staff = current_staff()?;
            db::rewards(&pool()?, staff.program_id).await
        }
        .await,
    )
}

/// Adds a reward (no `reward_id`) or changes one. An empty stock or limit is none.
#[server(endpoint = "save_reward")]
pub async fn save_reward(
    csrf: String,
    reward_id: Option<String>,
    name: String,
    points_cost: String,
    stock: Option<String>,
    daily_limit: Option<String>,
) -> Result<i64, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let change = db::RewardChange {
                reward_id: optional_number(reward_id.as_deref(), LoyaltyError::RewardNotFound)?,
                name: name.trim(),
                points_cost: points_cost
                    .trim()
                    .parse()
                    .map_err(|_| LoyaltyError::InvalidRewardCost)?,
                stock: optional_number(stock.as_deref(), LoyaltyError::InvalidRewardStock)?,
                daily_limit: optional_number(
                    daily_limit.as_deref(),
                    LoyaltyError::InvalidRewardLimit,
                )?,
            };
            let id = db::save_reward(&pool()?, &staff, &change).await?;
            redirect_form_post(REWARDS_PATH);
            Ok(id)
        }
        .await,
    )
}

/// Takes a reward out of the catalog.
#[server(endpoint = "retire_reward")]
pub async fn retire_reward(csrf: String, reward_id: i64) -> Result<i64, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            db::retire_reward(&pool()?, &staff, reward_id).await?;
            redirect_form_post(REWARDS_PATH);
            Ok(reward_id)
        }
        .await,
    )
}

/// Redeems one reward for a member, the session checked in the statement that redeems it, on the counter's
/// connections. Retrying with the same idempotency key never redeems it twice.
#[server(endpoint = "redeem_reward")]
pub async fn redeem_reward(
    csrf: String,
    external_id: String,
    reward_id: i64,
    idempotency_key: String,
) -> Result<PointsReceipt, LoyaltyError> {
    use crate::request::{answer, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let session = session_key()?;
            let external_id = external_id.trim().to_ascii_uppercase();
            let key = idempotency_key.trim();
            let receipt = db::redeem_reward(
                &counter_pool()?,
                &session,
                &csrf,
                &external_id,
                reward_id,
                (!key.is_empty()).then_some(key),
            )
            .await?;
            redirect_form_post(&format!(
                "/member/{}?receipt={}",
                receipt.external_id, receipt.transaction_id
            ));
            Ok(receipt)
        }
        .await,
    )
}

/// A number a form gives, where empty is none; `refusal` for anything else that is not a whole number.
fn optional_number(text: Option<&str>, refusal: LoyaltyError) -> Result<Option<i64>, LoyaltyError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|_| refusal),
    }
}

/// One button per reward on offer, for the member on screen. Each rendering carries its own idempotency keys.
#[component]
pub fn RewardButtons(
    external_id: String,
    form_key: String,
    rewards: Vec<Reward>,
    balance: i64,
    redeem: ServerAction<RedeemReward>,
) -> impl IntoView {
    if rewards.is_empty() {
        return ().into_any();
    }
    let pending = move || redeem.pending().get();
    view! {
        <div class="rewards-pos" aria-label="Rewards">
            <h2>"Rewards"</h2>
            <ul>
                {rewards
                    .into_iter()
                    .map(|reward| {
                        let short = reward.points_cost > balance;
                        let sold_out = reward.stock == Some(0);
                        let stock = reward.stock.map(|left| format!(", {left} left")).unwrap_or_default();
                        let external_id = external_id.clone();
                        let key = format!("{form_key}-reward-{}", reward.id);
                        view! {
                            <li>
                                <ActionForm action=redeem attr:class="reward-form">
                                    <crate::auth::CsrfField />
                                    <input type="hidden" name="external_id" value=external_id />
                                    <input type="hidden" name="reward_id" value=reward.id.to_string() />
                                    <input
                                        type="hidden"
                                        name="idempotency_key"
                                        value=key
                                    />
                                    <button
                                        type="submit"
                                        class="reward"
                                        disabled=move || pending() || short || sold_out
                                    >
                                        {format!("{} · {} points{stock}", reward.name, reward.points_cost)}
                                    </button>
                                </ActionForm>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </div>
    }
    .into_any()
}

/// The managers' catalog: every reward on offer, a form to change each, one to add one.
#[component]
pub fn RewardsPage() -> impl IntoView {
    let save = ServerAction::<SaveReward>::new();
    let retire = ServerAction::<RetireReward>::new();
    let rewards = Resource::new(
        move || (save.version().get(), retire.version().get()),
        |_| list_rewards(),
    );
    let outcome = move || {
        let saved = save
            .value()
            .get()
            .map(|r| r.map(|_| "The catalog is saved."));
        let retired = retire
            .value()
            .get()
            .map(|r| r.map(|_| "The reward is out of the catalog."));
        saved.or(retired)
    };
    view! {
        <section class="rewards">
            <h1>"Rewards"</h1>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    outcome()
                        .map(|outcome| match outcome {
                            Ok(said) => {
                                view! {
                                    <div class="outcome ok">
                                        <p class="big">{said}</p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match rewards.await {
                        Ok(list) => {
                            view! {
                                <table class="reward-list">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Reward"</th>
                                            <th scope="col" class="num">"Points"</th>
                                            <th scope="col" class="num">"Stock"</th>
                                            <th scope="col" class="num">"Per member per day"</th>
                                            <th scope="col">"Change"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {list
                                            .into_iter()
                                            .map(|reward| view! { <RewardRow reward save retire /> })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <h2>"Add a reward"</h2>
            <ActionForm action=save attr:class="card reward-new">
                <crate::auth::CsrfField />
                <RewardFields prefix="new".into() reward=None />
                <button type="submit">"Add"</button>
            </ActionForm>
        </section>
    }
}

/// One reward of the catalog, with its own form.
#[component]
fn RewardRow(
    reward: Reward,
    save: ServerAction<SaveReward>,
    retire: ServerAction<RetireReward>,
) -> impl IntoView {
    let stock = reward
        .stock
        .map(|n| n.to_string())
        .unwrap_or_else(|| "no limit".into());
    let limit = reward
        .daily_limit
        .map(|n| n.to_string())
        .unwrap_or_else(|| "no limit".into());
    let id = reward.id;
    let name = reward.name.clone();
    let retire_label = format!("Retire {name}");
    let data_name = name.clone();
    view! {
        <tr data-reward=data_name>
            <td>{name}</td>
            <td class="num">{reward.points_cost}</td>
            <td class="num">{stock}</td>
            <td class="num">{limit}</td>
            <td>
                <details>
                    <summary>"Change…"</summary>
                    <ActionForm action=save attr:class="card">
                        <crate::auth::CsrfField />
                        <input type="hidden" name="reward_id" value=id.to_string() />
                        <RewardFields prefix=format!("reward-{id}") reward=Some(reward) />
                        <button type="submit">"Save"</button>
                    </ActionForm>
                </details>
                <ActionForm action=retire attr:class="inline">
                    <crate::auth::CsrfField />
                    <input type="hidden" name="reward_id" value=id.to_string() />
                    <button type="submit" class="danger" aria-label=retire_label>
                        "Retire"
                    </button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// A reward's fields, empty for a new one.
#[component]
fn RewardFields(prefix: String, reward: Option<Reward>) -> impl IntoView {
    let value =
        |read: fn(&Reward) -> Option<String>| reward.as_ref().and_then(read).unwrap_or_default();
    let name = value(|r| Some(r.name.clone()));
    let cost = value(|r| Some(r.points_cost.to_string()));
    let stock = value(|r| r.stock.map(|n| n.to_string()));
    let limit = value(|r| r.daily_limit.map(|n| n.to_string()));
    view! {
        <label for=format!("{prefix}-name")>"Name"</label>
        <input id=format!("{prefix}-name") name="name" required maxlength="100" value=name />
        <label for=format!("{prefix}-cost")>"Points"</label>
        <input
            id=format!("{prefix}-cost")
            name="points_cost"
            type="number"
            min="1"
            max="1000000"
            required
            value=cost
        />
        <label for=format!("{prefix}-stock")>"Stock (empty: no limit)"</label>
        <input id=format!("{prefix}-stock") name="stock" type="number" min="0" max="1000000" value=stock />
        <label for=format!("{prefix}-limit")>"Per member per day (empty: no limit)"</label>
        <input id=format!("{prefix}-limit") name="daily_limit" type="number" min="1" max="100" value=limit />
    }
}
