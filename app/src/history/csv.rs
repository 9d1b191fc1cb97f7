//! The history's CSV export, streamed from the database.

use loyalty_core::LoyaltyError;

use crate::request::{Outcome, csv_attachment, manager};
use crate::session::Staff;

use super::filter::parse_filter;

/// `GET /api/history.csv?from=&to=&type=&member=&staff=`: everything the filter matches, as CSV, streamed from
/// the database. Managers only; the program is the session's.
pub async fn csv_download(
    axum::extract::State(pool): axum::extract::State<sqlx::PgPool>,
    staff: Option<axum::Extension<Staff>>,
    outcome: Option<axum::Extension<Outcome>>,
    axum::extract::Query(query): axum::extract::Query<CsvQuery>,
) -> axum::response::Response {
    let download = staff
        .ok_or(LoyaltyError::NotSignedIn)
        .and_then(|axum::Extension(staff)| manager(staff))
        .and_then(|me| {
            let filter = parse_filter(
                query.from.as_deref(),
                query.to.as_deref(),
                query.tx_type.as_deref(),
                query.member.as_deref(),
                query.staff.as_deref(),
            )?;
            let body = super::db::history_csv(pool, me.program_id, filter);
            Ok(("history.csv".to_owned(), body))
        });
    csv_attachment(outcome.as_ref().map(|o| &o.0), download)
}

/// The CSV export's query string: the history filter's fields.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CsvQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(rename = "type")]
    pub tx_type: Option<String>,
    pub member: Option<String>,
    pub staff: Option<String>,
}
