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
use loyalty_core::LoyaltyError;
use loyalty_core::wire;

mod chart;
#[cfg(feature = "ssr")]
mod csv;
#[cfg(feature = "ssr")]
pub mod db;
mod filter;
mod page;
mod void;

#[cfg(feature = "ssr")]
pub use csv::{CsvQuery, csv_download};
pub use filter::parse_filter;
pub use page::HistoryPage;
pub use void::{VoidTransaction, void_outcome_from_query, void_return_path, void_transaction};

/// Where the router shows [`HistoryPage`].
pub const HISTORY_PATH: &str = "/history";
/// Where the server serves [`csv_download`].
pub const CSV_PATH: &str = "/api/history.csv";
/// Rows on one page.
pub const PAGE_ROWS: i64 = 50;

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
    use crate::request::{answer, current_staff, manager, pool};
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
            let cursor = filter::given(cursor.as_deref());
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
    use crate::request::{answer, current_staff, manager, pool};
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
