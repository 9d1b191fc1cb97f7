//! Batches of postcards: a manager orders codes for a mailing, exports them for the mailing house or prints
//! them, and withdraws the ones nobody claimed.

use chrono::{DateTime, NaiveDate, Utc};
use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
pub mod db;

/// Where the server serves [`csv_download`].
pub const CSV_PATH: &str = "/api/batch.csv";
/// The most postcards one batch may hold.
pub const MAX_BATCH_SIZE: i64 = 100_000;
/// Batches the list shows, newest first.
pub const LIST_ROWS: i64 = 200;
/// Postcards on one printed page.
pub const PRINT_ROWS: i64 = 120;

/// A batch with its counts: `claimed + unclaimed + voided = size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    pub id: Uuid,
    pub name: String,
    pub size: i64,
    pub claimed: i64,
    /// Codes that can still be claimed.
    pub unclaimed: i64,
    /// Codes withdrawn when the batch was voided.
    pub voided: i64,
    pub created_at: DateTime<Utc>,
    /// The day it was made, on the program's clock.
    pub created_on: NaiveDate,
    pub created_by: String,
    pub voided_at: Option<DateTime<Utc>>,
    /// The day it was withdrawn, on the program's clock.
    pub voided_on: Option<NaiveDate>,
    /// Points each postcard gives when claimed.
    pub welcome_points: i64,
    /// The last day its postcards can be claimed, on the program's clock.
    pub last_day: Option<NaiveDate>,
    pub voided_by: Option<String>,
}

/// One printable postcard: its code and the code as an inline SVG QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Postcard {
    pub code: String,
    pub qr_svg: String,
}

/// A printed page of a batch's postcards that can still be claimed, in code order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostcardSheet {
    pub batch: BatchSummary,
    pub postcards: Vec<Postcard>,
    /// The `after` of the next page, if there is one.
    pub next_after: Option<String>,
}

#[cfg(feature = "ssr")]
fn parse_batch_id(batch_id: &str) -> Result<Uuid, LoyaltyError> {
    batch_id
        .trim()
        .parse()
        .map_err(|_| LoyaltyError::BatchNotFound)
}

/// Makes a batch of postcard codes in the signed-in manager's program. With a `request_key` (the form's
/// [`BatchesPageData::form_key`]), a repeat of the call answers with the batch the first call made.
#[server(endpoint = "create_batch")]
pub async fn create_batch(
    csrf: String,
    name: String,
    size: String,
    #[server(default)] request_key: Option<String>,
    #[server(default)] welcome_points: Option<String>,
    #[server(default)] last_day: Option<String>,
) -> Result<BatchSummary, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let size: i64 = size
                .trim()
                .replace([',', '_'], "")
                .parse()
                .map_err(|_| LoyaltyError::InvalidBatchSize)?;
            let request_key = request_key
                .as_deref()
                .map(str::trim)
                .filter(|k| !k.is_empty());
            let filled = |text: &Option<String>| {
                text.as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
            };
            let offer = db::BatchOffer {
                welcome_points: match filled(&welcome_points) {
                    None => 0,
                    Some(points) => points
                        .parse()
                        .map_err(|_| LoyaltyError::InvalidWelcomePoints)?,
                },
                last_day: filled(&last_day)
                    .map(|day| {
                        NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|_| {
                            LoyaltyError::InvalidDate {
                                bound: loyalty_core::error::DateBound::End,
                            }
                        })
                    })
                    .transpose()?,
            };
            let batch = db::create_batch_with_offer(
                &pool()?,
                staff.program_id,
                staff.id,
                &name,
                size,
                request_key,
                &offer,
            )
            .await?;
            redirect_form_post("/batches");
            Ok(batch)
        }
        .await,
    )
}

/// The batches page: the list, and a fresh key for its order form, so a form sent twice orders one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchesPageData {
    pub batches: Vec<BatchSummary>,
    pub form_key: String,
}

/// The batches page's data, with a new key for each rendering of its order form.
#[server(endpoint = "batches_page")]
pub async fn load_batches_page() -> Result<BatchesPageData, LoyaltyError> {
    Ok(BatchesPageData {
        batches: list_batches().await?,
        form_key: Uuid::new_v4().to_string(),
    })
}

/// The signed-in manager's batches, newest first, with their counts.
#[server(endpoint = "batches")]
pub async fn list_batches() -> Result<Vec<BatchSummary>, LoyaltyError> {
    use crate::request::{answer, current_staff, manager, pool};
    answer(
        async {
            let staff = manager(current_staff()?)?;
            db::list_batches(&pool()?, staff.program_id, LIST_ROWS).await
        }
        .await,
    )
}

/// Withdraws a batch's unclaimed codes: scanned, they answer that the postcard was withdrawn.
#[server(endpoint = "void_batch")]
pub async fn void_batch(csrf: String, batch_id: String) -> Result<BatchSummary, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let batch_id = parse_batch_id(&batch_id)?;
            let batch = db::void_batch(&pool()?, staff.program_id, staff.id, batch_id).await?;
            redirect_form_post("/batches");
            Ok(batch)
        }
        .await,
    )
}

/// A page of a batch's printable postcards, after the code `after`.
#[server(endpoint = "batch_postcards")]
pub async fn batch_postcards(
    batch_id: String,
    after: Option<String>,
) -> Result<PostcardSheet, LoyaltyError> {
    use crate::request::{answer, current_staff, manager, pool};
    answer(
        async {
            let staff = manager(current_staff()?)?;
            let batch_id = parse_batch_id(&batch_id)?;
            let pool = pool()?;
            let batch = db::find_batch(&pool, staff.program_id, batch_id).await?;
            let after = after.as_deref().map(str::trim).filter(|a| !a.is_empty());
            let mut postcards =
                db::printable_postcards(&pool, staff.program_id, batch_id, after, PRINT_ROWS + 1)
                    .await?;
            let next_after = (postcards.len() as i64 > PRINT_ROWS).then(|| {
                postcards.truncate(PRINT_ROWS as usize);
                postcards.last().map(|p| p.code.clone()).unwrap_or_default()
            });
            Ok(PostcardSheet {
                batch,
                postcards,
                next_after,
            })
        }
        .await,
    )
}

/// `GET /api/batch.csv?id=<batch>`: every code of the batch with its batch name and what became of it, for a
/// mailing house. Managers only; the program is the session's.
#[cfg(feature = "ssr")]
pub async fn csv_download(
    axum::extract::State(pool): axum::extract::State<sqlx::PgPool>,
    staff: Option<axum::Extension<crate::session::Staff>>,
    outcome: Option<axum::Extension<crate::request::Outcome>>,
    axum::extract::Query(query): axum::extract::Query<CsvQuery>,
) -> axum::response::Response {
    let download = async {
        let axum::Extension(staff) = staff.ok_or(LoyaltyError::NotSignedIn)?;
        let staff = crate::request::manager(staff)?;
        let batch_id = parse_batch_id(query.id.as_deref().unwrap_or(""))?;
        let batch = db::find_batch(&pool, staff.program_id, batch_id).await?;
        let filename = format!("postcards-{}.csv", batch.id);
        Ok((filename, db::batch_csv(pool, staff.program_id, batch)))
    }
    .await;
    crate::request::csv_attachment(outcome.as_ref().map(|o| &o.0), download)
}

/// The CSV export's query string.
#[cfg(feature = "ssr")]
#[derive(Debug, Default, Deserialize)]
pub struct CsvQuery {
    pub id: Option<String>,
}

fn day(on: &NaiveDate) -> String {
    loyalty_core::error::day(on)
}

/// The batches page: order a batch, see what became of each, export, print or withdraw it.
#[component]
pub fn BatchesPage() -> impl IntoView {
    let create = ServerAction::<CreateBatch>::new();
    let void = ServerAction::<VoidBatch>::new();
    // A batch made means a new list and a new key for the next order; a refused order keeps the form as it
    // was typed, and its key, which no batch has used.
    let made = RwSignal::new(0_u32);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            made.update(|n| *n += 1);
        }
    });
    let page = Resource::new(
        move || (made.get(), void.version().get()),
        |_| load_batches_page(),
    );
    view! {
        <section class="batches">
            <h1>"Postcard batches"</h1>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    create
                        .value()
                        .get()
                        .map(|result| match result {
                            Ok(batch) => {
                                view! {
                                    <div class="outcome ok">
                                        <p class="big">
                                            {format!("Made {} codes for {}", batch.size, batch.name)}
                                        </p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                        })
                }}
                {move || {
                    void.value()
                        .get()
                        .map(|result| match result {
                            Ok(batch) => {
                                view! {
                                    <div class="outcome ok">
                                        <p class="big">
                                            {format!(
                                                "Withdrew {} unclaimed codes of {}",
                                                batch.voided,
                                                batch.name,
                                            )}
                                        </p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(BatchesPageData { batches, form_key }) => {
                            view! {
                                <OrderForm create form_key />
                                <h2>"Batches"</h2>
                                <BatchList batches void />
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The order form. Its key makes the batch once, however often the form is sent: a double click, or the
/// same form sent again after an answer that never came.
#[component]
fn OrderForm(create: ServerAction<CreateBatch>, form_key: String) -> impl IntoView {
    view! {
        <h2>"Order a batch"</h2>
        <ActionForm action=create attr:class="card batch-form">
            <crate::auth::CsrfField />
            <input type="hidden" name="request_key" value=form_key />
            <label for="batch-name">"Name (for you and the mailing house)"</label>
            <input id="batch-name" name="name" required maxlength="100" placeholder="Spring mailing" />
            <label for="batch-size">"Postcards (1 to 100,000)"</label>
            <input
                id="batch-size"
                name="size"
                type="number"
                min="1"
                max=MAX_BATCH_SIZE
                required
                inputmode="numeric"
            />
            <label for="batch-welcome">"Welcome points for each postcard claimed (optional)"</label>
            <input id="batch-welcome" name="welcome_points" type="number" min="0" max="100000" inputmode="numeric" />
            <label for="batch-last-day">"Last day to claim (optional)"</label>
            <input id="batch-last-day" name="last_day" type="date" />
            <button type="submit" disabled=move || create.pending().get()>
                "Make the codes"
            </button>
        </ActionForm>
    }
}

#[component]
fn BatchList(batches: Vec<BatchSummary>, void: ServerAction<VoidBatch>) -> impl IntoView {
    if batches.is_empty() {
        return view! { <p class="empty">"No batches yet."</p> }.into_any();
    }
    view! {
        <div class="batch-table-frame">
            <table class="batch-list">
                <thead>
                    <tr>
                        <th scope="col">"Batch"</th>
                        <th scope="col">"Made"</th>
                        <th scope="col" class="num">"Codes"</th>
                        <th scope="col" class="num">"Claimed"</th>
                        <th scope="col" class="num">"Unclaimed"</th>
                        <th scope="col">"Withdrawn"</th>
                        <th scope="col">"Export"</th>
                    </tr>
                </thead>
                <tbody>
                    {batches
                        .into_iter()
                        .map(|batch| view! { <BatchRow batch void /> })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn BatchRow(batch: BatchSummary, void: ServerAction<VoidBatch>) -> impl IntoView {
    let BatchSummary {
        id,
        name,
        size,
        claimed,
        unclaimed,
        voided,
        created_on,
        created_by,
        voided_on,
        voided_by,
        ..
    } = batch;
    let withdrawn = match voided_on {
        Some(at) => view! {
            <span class="withdrawn">
                {format!(
                    "{voided} unclaimed withdrawn on {} by {}",
                    day(&at),
                    voided_by.unwrap_or_default(),
                )}
            </span>
        }
        .into_any(),
        None if unclaimed > 0 => {
            let label = format!("Withdraw the {unclaimed} unclaimed codes of {name}");
            view! {
                <details class="batch-void">
                    <summary>"Withdraw…"</summary>
                    <ActionForm action=void>
                        <crate::auth::CsrfField />
                        <input type="hidden" name="batch_id" value=id.to_string() />
                        <p>"Scanned, they will say the postcard was withdrawn. Claimed codes stay claimed."</p>
                        <button type="submit" class="danger" aria-label=label>
                            "Withdraw unclaimed codes"
                        </button>
                    </ActionForm>
                </details>
            }
            .into_any()
        }
        None => view! { <span>"—"</span> }.into_any(),
    };
    view! {
        <tr data-batch=id.to_string()>
            <td>{name.clone()}</td>
            <td>{format!("{} by {created_by}", day(&created_on))}</td>
            <td class="num">{size}</td>
            <td class="num">{claimed}</td>
            <td class="num">{unclaimed}</td>
            <td>{withdrawn}</td>
            <td class="batch-links">
                <a href=format!("{CSV_PATH}?id={id}") download>
                    "CSV"
                </a>
                " "
                <a href=format!("/batches/{id}/print")>"Print"</a>
            </td>
        </tr>
    }
}

/// The printable postcards of a batch, a page at a time: each with its code and QR code.
#[component]
pub fn PrintPage() -> impl IntoView {
    use leptos_router::hooks::{use_params_map, use_query_map};

    let params = use_params_map();
    let query = use_query_map();
    let sheet = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                query.read().get("after"),
            )
        },
        |(id, after)| batch_postcards(id, after),
    );
    view! {
        <section class="postcards">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sheet.await {
                        Ok(PostcardSheet { batch, postcards, next_after }) => {
                            let next = next_after
                                .map(|after| {
                                    view! {
                                        <a class="button" href=format!("/batches/{}/print?after={after}", batch.id)>
                                            "Next page of postcards"
                                        </a>
                                    }
                                });
                            let status = match batch.voided_on {
                                Some(at) => format!(
                                    "{} unclaimed postcards of this batch were withdrawn on {}: scanned, they say so, and they are not printed. The CSV lists which.",
                                    batch.voided,
                                    day(&at),
                                ),
                                None => format!(
                                    "{} of the batch's {} postcards can still be claimed: they are printed here (claimed ones are not).",
                                    batch.unclaimed,
                                    batch.size,
                                ),
                            };
                            let offer = offer_text(batch.welcome_points, batch.last_day);
                            view! {
                                <div class="no-print postcards-head">
                                    <h1>{format!("Postcards: {}", batch.name)}</h1>
                                    <p>{status}</p>
                                    <p>
                                        <a href="/batches">"Back to batches"</a>
                                        " · Print this page with your browser (Ctrl+P)."
                                    </p>
                                </div>
                                <div class="postcard-sheet">
                                    {postcards
                                        .into_iter()
                                        .map(|Postcard { code, qr_svg }| {
                                            let data_code = code.clone();
                                            view! {
                                                <article class="postcard" data-code=data_code>
                                                    <div class="qr" inner_html=qr_svg></div>
                                                    <p class="postcard-code">{code}</p>
                                                    <p class="postcard-hint">"Show this card at the counter to join."</p>
                                                    {offer.clone().map(|offer| view! { <p class="postcard-offer">{offer}</p> })}
                                                </article>
                                            }
                                        })
                                        .collect_view()}
                                </div>
                                <p class="no-print">{next}</p>
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

/// What a batch's postcards promise, as printed on each: "50 welcome points. Claim by 31 Dec 2026."
pub fn offer_text(welcome_points: i64, last_day: Option<NaiveDate>) -> Option<String> {
    let points = (welcome_points > 0).then(|| format!("{welcome_points} welcome points."));
    let until = last_day.map(|day| format!("Claim by {}.", loyalty_core::error::day(&day)));
    match (points, until) {
        (None, None) => None,
        (Some(p), None) => Some(p),
        (None, Some(u)) => Some(u),
        (Some(p), Some(u)) => Some(format!("{p} {u}")),
    }
}
