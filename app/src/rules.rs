//! What the program promises its customers: the currency, the earning rate, the cap per sale, welcome points
//! and promotions. Managers set them on the Program page; the database checks and applies them.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod db;

/// Where managers set the program's rules.
pub const PROGRAM_PATH: &str = "/program";

/// The program's rules as they stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramRules {
    pub currency: String,
    pub currency_minor_units: i16,
    pub earn_points: i64,
    /// Per how many minor units of a sale `earn_points` are earned: 100 is per 1.00.
    pub earn_per_minor: i64,
    pub sale_points_cap: Option<i64>,
    pub welcome_points_counter: i64,
    pub welcome_points_signup: i64,
    /// The rate as a receipt says it: "1 point per 1.00 EUR".
    pub rate: String,
    /// `earn_per_minor` as the currency writes it: "1.00".
    pub earn_per_amount: String,
    /// Points expire this many months after they were earned; `None`: they never do.
    pub points_expire_months: Option<i64>,
    /// The country calling code a phone number typed without one is read in: "33".
    pub calling_code: String,
    /// How long a clerk may return their own entries, in minutes.
    pub return_minutes: i64,
}

/// A promotion: a multiplier of a sale's points at the times it runs, on the program's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: i64,
    pub name: String,
    pub multiplier_percent: i64,
    /// When it runs, in words: "Tuesday 14:00-17:00, 2026-12-01 to 2026-12-31".
    pub when: String,
}

/// The program's rules, for any of its staff (the point of sale shows the currency).
#[server(endpoint = "program_rules")]
pub async fn load_program_rules() -> Result<ProgramRules, LoyaltyError> {
    use crate::request::{answer, current_staff, pool};
    answer(
        async {
            let staff = current_staff()?;
            db::rules(&pool()?, staff.program_id).await
        }
        .await,
    )
}

/// Sets the program's rules. The rate is `earn_points` points per `per_amount` of the currency ("1.00").
#[allow(clippy::too_many_arguments)]
#[server(endpoint = "set_program_rules")]
pub async fn set_program_rules(
    csrf: String,
    currency: String,
    currency_minor_units: String,
    earn_points: String,
    per_amount: String,
    sale_points_cap: Option<String>,
    welcome_points_counter: String,
    welcome_points_signup: String,
) -> Result<ProgramRules, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let number =
                |text: &str, refusal: LoyaltyError| text.trim().parse::<i64>().map_err(|_| refusal);
            let welcome = LoyaltyError::InvalidWelcomePoints;
            let change = db::RulesChange {
                currency: currency.trim().to_ascii_uppercase(),
                currency_minor_units: number(&currency_minor_units, LoyaltyError::InvalidCurrency)?,
                earn_points: number(&earn_points, LoyaltyError::InvalidEarnRate)?,
                per_amount: per_amount.trim().to_owned(),
                sale_points_cap: match sale_points_cap.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(cap) => Some(number(cap, LoyaltyError::InvalidSaleCap)?),
                },
                welcome_points_counter: number(&welcome_points_counter, welcome.clone())?,
                welcome_points_signup: number(&welcome_points_signup, welcome)?,
            };
            let db = pool()?;
            db::set_rules(&db, &staff, &change).await?;
            redirect_form_post(PROGRAM_PATH);
            db::rules(&db, staff.program_id).await
        }
        .await,
    )
}

/// Points expire `months` after they were earned (1 to 120); empty: they never expire.
#[server(endpoint = "set_points_expiry")]
pub async fn set_points_expiry(
    csrf: String,
    months: Option<String>,
) -> Result<Option<i64>, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let months = match months.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(m) => Some(m.parse::<i64>().map_err(|_| LoyaltyError::InvalidExpiry)?),
            };
            db::set_points_expiry(&pool()?, &staff, months).await?;
            redirect_form_post(PROGRAM_PATH);
            Ok(months)
        }
        .await,
    )
}

/// How the counter reads phone numbers typed without a country code, and how long a clerk may return their own
/// entries.
#[server(endpoint = "set_counter_settings")]
pub async fn set_counter_settings(
    csrf: String,
    calling_code: String,
    return_minutes: String,
) -> Result<(), LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let minutes = return_minutes
                .trim()
                .parse::<i32>()
                .map_err(|_| LoyaltyError::InvalidReturnMinutes)?;
            db::set_counter_settings(&pool()?, &staff, calling_code.trim(), minutes).await?;
            redirect_form_post(PROGRAM_PATH);
            Ok(())
        }
        .await,
    )
}

/// Runs the program's points expiry now, as the hourly run does: the points expired.
#[server(endpoint = "run_expiry")]
pub async fn run_expiry(csrf: String) -> Result<i64, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let expired = db::run_expiry(&pool()?, staff.program_id).await?;
            redirect_form_post(PROGRAM_PATH);
            Ok(expired)
        }
        .await,
    )
}

/// The program's promotions that have not been retired.
#[server(endpoint = "promotions")]
pub async fn list_promotions() -> Result<Vec<Promotion>, LoyaltyError> {
    use crate::request::{answer, current_staff, manager, pool};
    answer(
        async {
            let staff = manager(current_staff()?)?;
            db::promotions(&pool()?, staff.program_id).await
        }
        .await,
    )
}

/// Adds a promotion: a multiplier in percent (200 doubles), optional first and last days, days of the week
/// (each box ticked) and hours, all on the program's clock.
#[allow(clippy::too_many_arguments)]
#[server(endpoint = "save_promotion")]
pub async fn save_promotion(
    csrf: String,
    name: String,
    multiplier_percent: String,
    starts_on: Option<String>,
    ends_on: Option<String>,
    mon: Option<String>,
    tue: Option<String>,
    wed: Option<String>,
    thu: Option<String>,
    fri: Option<String>,
    sat: Option<String>,
    sun: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
) -> Result<i64, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let ticked = [mon, tue, wed, thu, fri, sat, sun].map(|day| day.is_some());
            let promotion = db::PromotionChange::read(
                &name,
                &multiplier_percent,
                [starts_on.as_deref(), ends_on.as_deref()],
                ticked,
                [starts_at.as_deref(), ends_at.as_deref()],
            )?;
            let id = db::save_promotion(&pool()?, &staff, &promotion).await?;
            redirect_form_post(PROGRAM_PATH);
            Ok(id)
        }
        .await,
    )
}

/// Ends a promotion: sales no longer get it.
#[server(endpoint = "retire_promotion")]
pub async fn retire_promotion(csrf: String, promotion_id: i64) -> Result<i64, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            db::retire_promotion(&pool()?, &staff, promotion_id).await?;
            redirect_form_post(PROGRAM_PATH);
            Ok(promotion_id)
        }
        .await,
    )
}

/// The days of the week, Monday first as ISO numbers them: the form's field and the label.
pub const WEEKDAYS: [(&str, &str); 7] = [
    ("mon", "Mon"),
    ("tue", "Tue"),
    ("wed", "Wed"),
    ("thu", "Thu"),
    ("fri", "Fri"),
    ("sat", "Sat"),
    ("sun", "Sun"),
];

/// The managers' Program page: the rules, and the promotions.
#[component]
pub fn ProgramPage() -> impl IntoView {
    let set_rules = ServerAction::<SetProgramRules>::new();
    let save = ServerAction::<SavePromotion>::new();
    let set_expiry = ServerAction::<SetPointsExpiry>::new();
    let run = ServerAction::<RunExpiry>::new();
    let retire = ServerAction::<RetirePromotion>::new();
    let set_counter = ServerAction::<SetCounterSettings>::new();
    let rules = Resource::new(
        move || {
            (
                set_rules.version().get(),
                set_expiry.version().get(),
                set_counter.version().get(),
            )
        },
        |_| load_program_rules(),
    );
    let promotions = Resource::new(
        move || (save.version().get(), retire.version().get()),
        |_| list_promotions(),
    );
    let outcome = move || {
        let rules = set_rules
            .value()
            .get()
            .map(|r| r.map(|_| "The program's rules are saved."));
        let saved = save
            .value()
            .get()
            .map(|r| r.map(|_| "The promotion is added."));
        let retired = retire
            .value()
            .get()
            .map(|r| r.map(|_| "The promotion has ended."));
        let expiry = set_expiry.value().get().map(|r| {
            r.map(|months| match months {
                Some(_) => "Points now expire after the months set.".to_owned(),
                None => "Points no longer expire.".to_owned(),
            })
        });
        let ran = run
            .value()
            .get()
            .map(|r| r.map(|points| format!("The expiry run is done: {points} points expired.")));
        let counter = set_counter
            .value()
            .get()
            .map(|r| r.map(|()| "The counter's settings are saved.".to_owned()));
        rules
            .or(saved)
            .or(retired)
            .map(|r| r.map(str::to_owned))
            .or(expiry)
            .or(ran)
            .or(counter)
    };
    view! {
        <section class="program">
            <h1>"Program"</h1>
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
                    match rules.await {
                        Ok(rules) => {
                            view! {
                                <RulesForm rules=rules.clone() set_rules />
                                <ExpiryForm rules=rules.clone() set_expiry run />
                                <CounterForm rules set_counter />
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <h2>"Promotions"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match promotions.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="empty">"No promotion is running or planned."</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <ul class="promotion-list">
                                    {list
                                        .into_iter()
                                        .map(|promotion| view! { <PromotionRow promotion retire /> })
                                        .collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <PromotionForm save />
        </section>
    }
}

#[component]
fn RulesForm(rules: ProgramRules, set_rules: ServerAction<SetProgramRules>) -> impl IntoView {
    let cap = rules
        .sale_points_cap
        .map(|c| c.to_string())
        .unwrap_or_default();
    view! {
        <p class="rate" data-rate=rules.rate.clone()>"Customers earn " {rules.rate.clone()} "."</p>
        <ActionForm action=set_rules attr:class="card rules-form">
            <crate::auth::CsrfField />
            <label for="rules-currency">"Currency (ISO 4217 code)"</label>
            <input id="rules-currency" name="currency" required maxlength="3" value=rules.currency />
            <label for="rules-minor">"Digits after the point"</label>
            <input
                id="rules-minor"
                name="currency_minor_units"
                type="number"
                min="0"
                max="3"
                required
                value=rules.currency_minor_units.to_string()
            />
            <label for="rules-points">"Points earned"</label>
            <input
                id="rules-points"
                name="earn_points"
                type="number"
                min="1"
                max="1000"
                required
                value=rules.earn_points.to_string()
            />
            <label for="rules-per">"per amount spent"</label>
            <input id="rules-per" name="per_amount" required inputmode="decimal" value=rules.earn_per_amount />
            <label for="rules-cap">"Most points for one sale (empty: no cap)"</label>
            <input id="rules-cap" name="sale_points_cap" type="number" min="1" max="1000000" value=cap />
            <label for="rules-welcome-counter">"Welcome points at the counter"</label>
            <input
                id="rules-welcome-counter"
                name="welcome_points_counter"
                type="number"
                min="0"
                max="100000"
                required
                value=rules.welcome_points_counter.to_string()
            />
            <label for="rules-welcome-signup">"Welcome points for a public sign-up"</label>
            <input
                id="rules-welcome-signup"
                name="welcome_points_signup"
                type="number"
                min="0"
                max="100000"
                required
                value=rules.welcome_points_signup.to_string()
            />
            <button type="submit">"Save the rules"</button>
        </ActionForm>
    }
}

#[component]
fn ExpiryForm(
    rules: ProgramRules,
    set_expiry: ServerAction<SetPointsExpiry>,
    run: ServerAction<RunExpiry>,
) -> impl IntoView {
    let months = rules
        .points_expire_months
        .map(|m| m.to_string())
        .unwrap_or_default();
    let said = match rules.points_expire_months {
        Some(m) => format!(
            "Points expire {m} months after they were earned; redeems use the oldest first."
        ),
        None => "Points never expire.".to_owned(),
    };
    view! {
        <h2>"Expiry"</h2>
        <p class="expiry-rule">{said}</p>
        <ActionForm action=set_expiry attr:class="card expiry-form">
            <crate::auth::CsrfField />
            <label for="expiry-months">"Points expire after (months; empty: never)"</label>
            <input id="expiry-months" name="months" type="number" min="1" max="120" value=months />
            <button type="submit">"Save expiry"</button>
        </ActionForm>
        <ActionForm action=run attr:class="inline">
            <crate::auth::CsrfField />
            <button type="submit" class="secondary">
                "Run the expiry now"
            </button>
        </ActionForm>
    }
}

#[component]
fn CounterForm(
    rules: ProgramRules,
    set_counter: ServerAction<SetCounterSettings>,
) -> impl IntoView {
    view! {
        <h2>"At the counter"</h2>
        <ActionForm action=set_counter attr:class="card counter-form">
            <crate::auth::CsrfField />
            <label for="calling-code">"Country calling code of phone numbers typed without one (33: France)"</label>
            <input
                id="calling-code"
                name="calling_code"
                inputmode="numeric"
                pattern="[1-9][0-9]{0,2}"
                required
                value=rules.calling_code
            />
            <label for="return-minutes">"Minutes a clerk may return their own entries (managers: always)"</label>
            <input
                id="return-minutes"
                name="return_minutes"
                type="number"
                min="1"
                max="10080"
                required
                value=rules.return_minutes.to_string()
            />
            <button type="submit">"Save the counter's settings"</button>
        </ActionForm>
    }
}

#[component]
fn PromotionRow(promotion: Promotion, retire: ServerAction<RetirePromotion>) -> impl IntoView {
    let label = format!("End {}", promotion.name);
    let data_name = promotion.name.clone();
    view! {
        <li data-promotion=data_name>
            <strong>{promotion.name}</strong>
            {format!(" x{} · {}", multiplier(promotion.multiplier_percent), promotion.when)}
            <ActionForm action=retire attr:class="inline">
                <crate::auth::CsrfField />
                <input type="hidden" name="promotion_id" value=promotion.id.to_string() />
                <button type="submit" class="danger" aria-label=label>
                    "End"
                </button>
            </ActionForm>
        </li>
    }
}

#[component]
fn PromotionForm(save: ServerAction<SavePromotion>) -> impl IntoView {
    view! {
        <ActionForm action=save attr:class="card promotion-form">
            <crate::auth::CsrfField />
            <label for="promotion-name">"Name"</label>
            <input id="promotion-name" name="name" required maxlength="100" placeholder="Tuesday afternoons" />
            <label for="promotion-multiplier">"Points multiplied by (%: 200 doubles)"</label>
            <input
                id="promotion-multiplier"
                name="multiplier_percent"
                type="number"
                min="101"
                max="1000"
                required
                value="200"
            />
            <label for="promotion-from">"First day (empty: from now)"</label>
            <input id="promotion-from" name="starts_on" type="date" />
            <label for="promotion-to">"Last day (empty: no end)"</label>
            <input id="promotion-to" name="ends_on" type="date" />
            <fieldset class="weekdays">
                <legend>"Days of the week (none ticked: every day)"</legend>
                {WEEKDAYS
                    .iter()
                    .map(|(field, label)| {
                        view! {
                            <label>
                                <input type="checkbox" name=*field value="on" />
                                {*label}
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
            <label for="promotion-starts">"From (empty: all day)"</label>
            <input id="promotion-starts" name="starts_at" type="time" />
            <label for="promotion-ends">"Until"</label>
            <input id="promotion-ends" name="ends_at" type="time" />
            <button type="submit">"Add the promotion"</button>
        </ActionForm>
    }
}

/// A multiplier in percent as a receipt says it: 200 is 2, 150 is 1.5.
pub fn multiplier(percent: i64) -> String {
    let text = format!("{}.{:02}", percent / 100, percent % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
