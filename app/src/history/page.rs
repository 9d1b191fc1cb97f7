//! The history page: the filter form, the rows with their void forms, the pager and the sums.

use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use loyalty_core::error::VOID_REASON_MAX_CHARS;
use loyalty_core::wire::{self, HistoryTotals, LedgerEntry, TxType};

use super::chart::DailyChart;
use super::filter::HistoryQuery;
use super::void::{VoidTransaction, void_outcome_from_query};
use super::{CSV_PATH, HISTORY_PATH, history, history_summary};

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
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
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
                                view! { <crate::notice::ErrorNotice error /> }.into_any()
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
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
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
                    <option value="EXPIRE" selected=type_is("EXPIRE")>
                        "Expired"
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
        expired,
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
                <dt>"Points expired"</dt>
                <dd>{expired}</dd>
            </div>
            <div>
                <dt>"Net"</dt>
                <dd>{earned - redeemed - expired}</dd>
            </div>
        </dl>
    }
}

fn type_label(tx_type: TxType) -> &'static str {
    tx_type.label()
}

/// One ledger row, with its void links or the form that voids it.
#[component]
fn HistoryRow(entry: LedgerEntry, void_action: ServerAction<VoidTransaction>) -> impl IntoView {
    let sold_apart = entry.sold_apart();
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
        sold_at,
        local_sold_at: _,
    } = entry;
    let voidable = voids.is_none() && voided_by.is_none();
    let reason_id = format!("void-reason-{id}");
    view! {
        <tr
            id=format!("tx-{id}")
            class=match tx_type {
                TxType::Earn => "earn",
                TxType::Redeem => "redeem",
                TxType::Expire => "expire",
            }
            class:history-voided=voided_by.is_some()
        >
            <td>{id}</td>
            <td>
                <time datetime=created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)>
                    {local_at.format("%Y-%m-%d %H:%M").to_string()}
                </time>
                {sold_at
                    .zip(sold_apart)
                    .map(|(sold_at, local)| {
                        view! {
                            <span class="history-sold-at">
                                "sold "
                                <time datetime=sold_at
                                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)>
                                    {local.format("%Y-%m-%d %H:%M").to_string()}
                                </time>
                            </span>
                        }
                    })}
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
                                    maxlength=VOID_REASON_MAX_CHARS
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
