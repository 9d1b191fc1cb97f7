//! The manager's transaction history: filters, pages newest first, sums, a per-day chart, the CSV export and
//! voids. Every part works as plain HTML forms and links; with JavaScript the page updates in place. The rows
//! ([`history`]) and the sums with the chart ([`history_summary`]) are two calls in two `Suspense`s: a page
//! of rows reads an index in order and comes back at once however large the filtered set, while the sums read
//! all of it, so the table never waits for them. Without JavaScript the server renders both before answering.
//!
//! Its own class names, styled in style/history.css: `history` (the page), `history-filters` (the GET form),
//! `history-totals` (a `dl`), `history-download`, `history-chart` (a `figure` with an inline SVG),
//! `history-bar-earned` / `history-bar-redeemed` (bars and legend swatches), `history-legend`,
//! `history-chart-data` (the chart's figures as a table in `details`), `history-table-frame` (scrolls the
//! table sideways on narrow screens), `history-table`, `history-voided` (a row that was voided),
//! `history-void` (the void cell), `history-void-form`, `history-pager`, `visually-hidden`. Shared ones from
//! style/main.css: `result`, `outcome ok`, `ErrorNotice`'s `outcome error`, `loading`, `empty`, `num`, and
//! `earn` / `redeem` on rows.

use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{self, DailyPoints, HistoryFilter, HistoryTotals, LedgerEntry, TxType};

#[cfg(feature = "ssr")]
pub mod db;

/// Where the router shows [`HistoryPage`].
pub const HISTORY_PATH: &str = "/history";
/// Where the server serves [`csv_download`].
pub const CSV_PATH: &str = "/api/history.csv";
/// Rows on one page.
pub const PAGE_ROWS: i64 = 50;
/// The longest reason a void may give.
pub const REASON_MAX_CHARS: usize = 400;
const REASON_MESSAGE: &str = "Give a reason for the void, up to 400 characters.";

fn invalid(message: &str) -> LoyaltyError {
    LoyaltyError::InvalidInput {
        message: message.into(),
    }
}

fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Reads the filter as the form sends it: blank fields mean "any", dates are `YYYY-MM-DD`.
pub fn parse_filter(
    from: Option<&str>,
    to: Option<&str>,
    tx_type: Option<&str>,
    member: Option<&str>,
    staff: Option<&str>,
) -> Result<HistoryFilter, LoyaltyError> {
    let date = |value: Option<&str>, which: &str| {
        given(value)
            .map(|v| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                    LoyaltyError::InvalidInput {
                        message: format!(
                            "Enter the {which} date as year-month-day, like 2026-11-27."
                        ),
                    }
                })
            })
            .transpose()
    };
    let from = date(from, "start")?;
    let to = date(to, "end")?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(invalid("The start date is after the end date."));
    }
    let tx_type = match given(tx_type).map(str::to_ascii_uppercase).as_deref() {
        None | Some("ALL") => None,
        Some(other) => Some(
            TxType::from_sql(other).ok_or_else(|| invalid("Choose earn, redeem or all types."))?,
        ),
    };
    let member = given(member).map(str::to_ascii_uppercase);
    if member.as_ref().is_some_and(|m| m.len() > 64) {
        return Err(invalid("That is not a member pass id: it is too long."));
    }
    let staff = given(staff).map(str::to_lowercase);
    if staff.as_ref().is_some_and(|s| s.len() > 254) {
        return Err(invalid(
            "That is not a staff email address: it is too long.",
        ));
    }
    // PostgreSQL text cannot hold a NUL: refused here, before the CSV's answer has begun.
    if [&member, &staff]
        .into_iter()
        .flatten()
        .any(|v| v.contains('\0'))
    {
        return Err(invalid(
            "The filter holds characters that cannot be searched for.",
        ));
    }
    Ok(HistoryFilter {
        from,
        to,
        tx_type,
        member,
        staff,
    })
}

/// One page of the program's history, newest first. Managers only. The sums over the whole filter are
/// [`history_summary`]'s.
#[server(endpoint = "history")]
pub async fn history(
    from: Option<String>,
    to: Option<String>,
    tx_type: Option<String>,
    member: Option<String>,
    staff: Option<String>,
    cursor: Option<String>,
) -> Result<wire::HistoryPage, LoyaltyError> {
    use crate::auth::server::*;
    answer(
        async {
            let me = manager(current_staff()?)?;
            let filter = parse_filter(
                from.as_deref(),
                to.as_deref(),
                tx_type.as_deref(),
                member.as_deref(),
                staff.as_deref(),
            )?;
            let cursor = given(cursor.as_deref());
            db::history_page(&pool()?, me.program_id, &filter, cursor, PAGE_ROWS).await
        }
        .await,
    )
}

/// The sums over everything the filter matches, in all and per day for the chart. Managers only. Asked for
/// apart from [`history`], since it reads every matching row.
#[server(endpoint = "history_summary")]
pub async fn history_summary(
    from: Option<String>,
    to: Option<String>,
    tx_type: Option<String>,
    member: Option<String>,
    staff: Option<String>,
) -> Result<wire::HistorySummary, LoyaltyError> {
    use crate::auth::server::*;
    answer(
        async {
            let me = manager(current_staff()?)?;
            let filter = parse_filter(
                from.as_deref(),
                to.as_deref(),
                tx_type.as_deref(),
                member.as_deref(),
                staff.as_deref(),
            )?;
            db::history_summary(&pool()?, me.program_id, &filter).await
        }
        .await,
    )
}

/// Voids a transaction with a compensating entry and returns that entry. Managers only.
#[server(endpoint = "void")]
pub async fn void_transaction(
    csrf: String,
    transaction_id: i64,
    reason: String,
) -> Result<LedgerEntry, LoyaltyError> {
    use crate::auth::server::*;
    answer(
        async {
            let outcome = async {
                let me = manager(staff_for_change(&csrf)?)?;
                let reason = reason.trim();
                if reason.is_empty() || reason.chars().count() > REASON_MAX_CHARS {
                    return Err(invalid(REASON_MESSAGE));
                }
                db::void(&pool()?, me.program_id, Some(me.id), transaction_id, reason).await
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
    let balance = param("balance").and_then(|b| b.parse().ok());
    Some(Err(match code.as_str() {
        "NOT_SIGNED_IN" => LoyaltyError::NotSignedIn,
        "MANAGERS_ONLY" => LoyaltyError::ManagersOnly,
        "CSRF_REJECTED" => LoyaltyError::CsrfRejected,
        "UNAVAILABLE" => LoyaltyError::Unavailable,
        "INVALID_INPUT" => invalid(REASON_MESSAGE),
        rpc => LoyaltyError::from_rpc(rpc, None, balance),
    }))
}

/// `GET /api/history.csv?from=&to=&type=&member=&staff=`: everything the filter matches, as CSV, streamed from
/// the database. Managers only; the program is the session's.
#[cfg(feature = "ssr")]
pub async fn csv_download(
    axum::extract::State(pool): axum::extract::State<sqlx::PgPool>,
    staff: Option<axum::Extension<crate::auth::server::Staff>>,
    axum::extract::Query(query): axum::extract::Query<CsvQuery>,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let allowed = staff
        .ok_or(LoyaltyError::NotSignedIn)
        .and_then(|axum::Extension(staff)| crate::auth::server::manager(staff))
        .and_then(|me| {
            parse_filter(
                query.from.as_deref(),
                query.to.as_deref(),
                query.tx_type.as_deref(),
                query.member.as_deref(),
                query.staff.as_deref(),
            )
            .map(|filter| (me, filter))
        });
    match allowed {
        Ok((me, filter)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"history.csv\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            axum::body::Body::from_stream(db::history_csv(pool, me.program_id, filter)),
        )
            .into_response(),
        Err(err) => (
            StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(err),
        )
            .into_response(),
    }
}

/// The CSV export's query string: the history filter's fields.
#[cfg(feature = "ssr")]
#[derive(Debug, Default, serde::Deserialize)]
pub struct CsvQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(rename = "type")]
    pub tx_type: Option<String>,
    pub member: Option<String>,
    pub staff: Option<String>,
}

/// The page's query string, as the history server function takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    tx_type: Option<String>,
    member: Option<String>,
    staff: Option<String>,
    cursor: Option<String>,
}

impl HistoryQuery {
    fn read(query: &ParamsMap) -> Self {
        let field = |name: &str| query.get(name).filter(|v| !v.trim().is_empty());
        Self {
            from: field("from"),
            to: field("to"),
            tx_type: field("type"),
            member: field("member"),
            staff: field("staff"),
            cursor: field("cursor"),
        }
    }

    /// The filter as a query string, without the cursor: `from=...&type=...`.
    fn filter_query(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("type", &self.tx_type),
            ("member", &self.member),
            ("staff", &self.staff),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
    }

    fn link(&self, path: &str, cursor: Option<&str>) -> String {
        let mut query = self.filter_query();
        if let Some(cursor) = cursor {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str("cursor=");
            query.push_str(&encode(cursor));
        }
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}

/// Percent-encodes a query string value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The manager's transaction history.
#[component]
pub fn HistoryPage() -> impl IntoView {
    let query = use_query_map();
    let current = Memo::new(move |_| HistoryQuery::read(&query.read()));
    let void_action = ServerAction::<VoidTransaction>::new();
    let page = Resource::new(
        move || (current.get(), void_action.version().get()),
        |(q, _)| history(q.from, q.to, q.tx_type, q.member, q.staff, q.cursor),
    );
    // The sums belong to the filter, not to the page: going to older rows does not add them up again, a void
    // does.
    let filter = Memo::new(move |_| HistoryQuery {
        cursor: None,
        ..current.get()
    });
    let summary = Resource::new(
        move || (filter.get(), void_action.version().get()),
        |(q, _)| history_summary(q.from, q.to, q.tx_type, q.member, q.staff),
    );
    // A void's outcome belongs to the page it was made on.
    Effect::watch(
        move || current.get(),
        move |_, _, _| void_action.value().set(None),
        false,
    );
    let outcome = move || match void_action.value().get() {
        Some(result) => Some(result.map(|void| void.voids.unwrap_or_default())),
        None => void_outcome_from_query(|name| query.read().get(name)),
    };

    view! {
        <section class="history">
            <h1>"Transaction history"</h1>
            <HistoryFilters current=current />
            <div class="result" role="status" aria-live="polite">
                {move || {
                    outcome()
                        .map(|outcome| match outcome {
                            Ok(id) => {
                                view! {
                                    <div class="outcome ok">
                                        <p class="big">{format!("Transaction #{id} was voided.")}</p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::layout::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
            <Suspense fallback=|| view! { <p class="loading">"Adding up…"</p> }>
                {move || Suspend::new(async move {
                    match summary.await {
                        Ok(summary) => view! { <HistorySums summary=summary /> }.into_any(),
                        // A refused filter or session is said once, where the rows would be.
                        Err(error) => {
                            if page.await.is_err() {
                                ().into_any()
                            } else {
                                view! { <crate::layout::ErrorNotice error /> }.into_any()
                            }
                        }
                    }
                })}
            </Suspense>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(page) => {
                            view! {
                                <HistoryResults
                                    page=page
                                    current=current.get_untracked()
                                    void_action=void_action
                                />
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::layout::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The filter form: a plain GET form, so the filters live in the address and links to them can be shared.
#[component]
fn HistoryFilters(current: Memo<HistoryQuery>) -> impl IntoView {
    let value = move |read: fn(&HistoryQuery) -> &Option<String>| {
        move || read(&current.read()).clone().unwrap_or_default()
    };
    let type_is = move |wanted: &'static str| {
        move || {
            current
                .read()
                .tx_type
                .as_deref()
                .unwrap_or("")
                .eq_ignore_ascii_case(wanted)
        }
    };
    view! {
        <Form method="GET" action=HISTORY_PATH attr:class="history-filters">
            <label>
                "From" <input type="date" name="from" value=value(|q| &q.from) />
            </label>
            <label>
                "To" <input type="date" name="to" value=value(|q| &q.to) />
            </label>
            <label>
                "Type"
                <select name="type">
                    <option value="" selected=type_is("")>
                        "All"
                    </option>
                    <option value="EARN" selected=type_is("EARN")>
                        "Earn"
                    </option>
                    <option value="REDEEM" selected=type_is("REDEEM")>
                        "Redeem"
                    </option>
                </select>
            </label>
            <label>
                "Member pass"
                <input
                    type="text"
                    name="member"
                    autocomplete="off"
                    placeholder="MBR-…"
                    value=value(|q| &q.member)
                />
            </label>
            <label>
                "Staff email"
                <input type="email" name="staff" autocomplete="off" value=value(|q| &q.staff) />
            </label>
            <button type="submit">"Show"</button>
            <a href=HISTORY_PATH>"Clear filters"</a>
        </Form>
    }
}

/// The totals line and the chart, for everything the filter matches.
#[component]
fn HistorySums(summary: wire::HistorySummary) -> impl IntoView {
    let wire::HistorySummary { totals, daily } = summary;
    view! {
        <HistoryTotalsLine totals=totals />
        <DailyChart daily=daily />
    }
}

/// The export link, the rows and the pager, for one loaded page.
#[component]
fn HistoryResults(
    page: wire::HistoryPage,
    current: HistoryQuery,
    void_action: ServerAction<VoidTransaction>,
) -> impl IntoView {
    let wire::HistoryPage {
        entries,
        next_cursor,
        time_zone,
    } = page;
    let csv_link = current.link(CSV_PATH, None);
    let newest_link = current
        .cursor
        .is_some()
        .then(|| current.link(HISTORY_PATH, None));
    let older_link = next_cursor.map(|cursor| current.link(HISTORY_PATH, Some(&cursor)));
    let empty = entries.is_empty();
    view! {
        <p class="history-download">
            <a href=csv_link rel="external" download="history.csv">
                "Download CSV"
            </a>
        </p>
        {if empty {
            view! { <p class="empty">"No transactions match these filters."</p> }.into_any()
        } else {
            view! {
                <div class="history-table-frame">
                <table class="history-table">
                    <caption class="visually-hidden">"Transactions, newest first"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"#"</th>
                            <th scope="col">{format!("Time ({time_zone})")}</th>
                            <th scope="col">"Member"</th>
                            <th scope="col">"Type"</th>
                            <th scope="col" class="num">"Points"</th>
                            <th scope="col" class="num">"Balance after"</th>
                            <th scope="col">"Staff"</th>
                            <th scope="col">"Note"</th>
                            <th scope="col">"Void"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {entries
                            .into_iter()
                            .map(|entry| view! { <HistoryRow entry=entry void_action=void_action /> })
                            .collect_view()}
                    </tbody>
                </table>
                </div>
            }
                .into_any()
        }}
        <nav class="history-pager" aria-label="Pages">
            {newest_link.map(|href| view! { <a href=href>"Newest"</a> })}
            {older_link.map(|href| view! { <a href=href rel="next">"Older"</a> })}
        </nav>
    }
}

#[component]
fn HistoryTotalsLine(totals: HistoryTotals) -> impl IntoView {
    let HistoryTotals {
        transactions,
        earned,
        redeemed,
    } = totals;
    view! {
        <dl class="history-totals">
            <div>
                <dt>"Transactions"</dt>
                <dd>{transactions}</dd>
            </div>
            <div>
                <dt>"Points earned"</dt>
                <dd>{earned}</dd>
            </div>
            <div>
                <dt>"Points redeemed"</dt>
                <dd>{redeemed}</dd>
            </div>
            <div>
                <dt>"Net"</dt>
                <dd>{earned - redeemed}</dd>
            </div>
        </dl>
    }
}

fn type_label(tx_type: TxType) -> &'static str {
    match tx_type {
        TxType::Earn => "Earn",
        TxType::Redeem => "Redeem",
    }
}

/// One ledger row, with its void links or the form that voids it.
#[component]
fn HistoryRow(entry: LedgerEntry, void_action: ServerAction<VoidTransaction>) -> impl IntoView {
    let LedgerEntry {
        id,
        external_id,
        tx_type,
        points,
        balance_after,
        description,
        staff_name,
        created_at,
        local_at,
        voids,
        voided_by,
    } = entry;
    let voidable = voids.is_none() && voided_by.is_none();
    let reason_id = format!("void-reason-{id}");
    view! {
        <tr
            id=format!("tx-{id}")
            class=match tx_type {
                TxType::Earn => "earn",
                TxType::Redeem => "redeem",
            }
            class:history-voided=voided_by.is_some()
        >
            <td>{id}</td>
            <td>
                <time datetime=created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)>
                    {local_at.format("%Y-%m-%d %H:%M").to_string()}
                </time>
            </td>
            <td class="pass-id">{external_id}</td>
            <td>{type_label(tx_type)}</td>
            <td class="num">{points}</td>
            <td class="num">{balance_after}</td>
            <td>{staff_name.unwrap_or_default()}</td>
            <td>{description.unwrap_or_default()}</td>
            <td class="history-void">
                {voids
                    .map(|of| {
                        view! { <a href=format!("#tx-{of}")>{format!("Void of #{of}")}</a> }
                    })}
                {voided_by
                    .map(|by| {
                        view! { <a href=format!("#tx-{by}")>{format!("Voided by #{by}")}</a> }
                    })}
                {voidable
                    .then(|| {
                        view! {
                            <ActionForm action=void_action attr:class="history-void-form">
                                <crate::auth::CsrfField />
                                <input type="hidden" name="transaction_id" value=id />
                                <label class="visually-hidden" for=reason_id.clone()>
                                    {format!("Reason for voiding #{id}")}
                                </label>
                                <input
                                    type="text"
                                    id=reason_id
                                    name="reason"
                                    required
                                    maxlength=REASON_MAX_CHARS
                                    placeholder="Reason"
                                />
                                <button type="submit">{format!("Void #{id}")}</button>
                            </ActionForm>
                        }
                    })}
            </td>
        </tr>
    }
}

/// Points earned and redeemed per day as bars, with the same numbers as a table for screen readers and for
/// anyone who wants the figures.
#[component]
fn DailyChart(daily: Vec<DailyPoints>) -> impl IntoView {
    const BAR: f64 = 6.0;
    const SLOT: f64 = 16.0;
    const HEIGHT: f64 = 100.0;
    const MIN_WIDTH: f64 = 320.0;
    if daily.is_empty() {
        return None;
    }
    let highest = daily
        .iter()
        .map(|d| d.earned.max(d.redeemed))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let height = |points: i64| points as f64 / highest * HEIGHT;
    // A few days are drawn at their natural width rather than stretched across the whole chart.
    let width = (SLOT * daily.len() as f64).max(MIN_WIDTH);
    let first = daily.first().map(|d| d.day).unwrap_or_default();
    let last = daily.last().map(|d| d.day).unwrap_or_default();
    let label = format!(
        "Points earned and redeemed per day, {first} to {last}; the figures are in the table below."
    );
    let bars = daily
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * SLOT + (SLOT - 2.0 * BAR) / 2.0;
            let (earned, redeemed) = (height(d.earned), height(d.redeemed));
            view! {
                <g>
                    <rect
                        class="history-bar-earned"
                        fill="#17663a"
                        x=format!("{x:.1}")
                        y=format!("{:.1}", HEIGHT - earned)
                        width=format!("{BAR:.1}")
                        height=format!("{earned:.1}")
                    />
                    <rect
                        class="history-bar-redeemed"
                        fill="#7a3e00"
                        x=format!("{:.1}", x + BAR)
                        y=format!("{:.1}", HEIGHT - redeemed)
                        width=format!("{BAR:.1}")
                        height=format!("{redeemed:.1}")
                    />
                </g>
            }
        })
        .collect_view();
    let rows = daily
        .into_iter()
        .map(|d| {
            view! {
                <tr>
                    <th scope="row">{d.day.to_string()}</th>
                    <td class="num">{d.earned}</td>
                    <td class="num">{d.redeemed}</td>
                </tr>
            }
        })
        .collect_view();
    Some(view! {
        <figure class="history-chart">
            <svg
                viewBox=format!("0 0 {width:.0} {HEIGHT:.0}")
                preserveAspectRatio="none"
                role="img"
                aria-label=label
            >
                {bars}
            </svg>
            <figcaption class="history-legend">
                <span class="history-bar-earned">"Earned"</span>
                " and "
                <span class="history-bar-redeemed">"redeemed"</span>
                {format!(" points per day, {first} to {last}")}
            </figcaption>
            <details class="history-chart-data">
                <summary>"Points per day as a table"</summary>
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"Day"</th>
                            <th scope="col" class="num">"Earned"</th>
                            <th scope="col" class="num">"Redeemed"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </figure>
    })
}
