//! The manager's history: filters, keyset pages, the sums (asked for apart from the pages), the CSV export and
//! voids, against the real database.

mod csv;
mod days;
mod filters;
mod pages;
mod plans;
mod seeded;
mod voids;

use app::history::db::history_page;
use app::points::db::PointsRequest;
use chrono::{DateTime, NaiveDate, Utc};
use loyalty_core::wire::{HistoryFilter, LedgerEntry, TxType};
use server::testkit::{TestDb, Till, points_request};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn at(d: u32, h: u32, m: u32, s: u32, micros: u32) -> DateTime<Utc> {
    day(d).and_hms_micro_opt(h, m, s, micros).unwrap().and_utc()
}

/// Every page of a filter, following the cursors.
async fn walk(db: &TestDb, filter: &HistoryFilter, limit: i64) -> Vec<LedgerEntry> {
    let mut cursor: Option<String> = None;
    let mut entries = Vec::new();
    for _ in 0..10_000 {
        let page = history_page(&db.app, db.program_id, filter, cursor.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.entries.len() as i64 <= limit);
        if page.next_cursor.is_some() {
            assert_eq!(
                page.entries.len() as i64,
                limit,
                "only a full page has a next one"
            );
        }
        entries.extend(page.entries);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return entries,
        }
    }
    panic!("the pages never ended");
}

fn ids(entries: &[LedgerEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

/// The id of the newest ledger row.
async fn last_id(db: &TestDb) -> i64 {
    sqlx::query_scalar("select max(id) from transactions")
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// An earn or a redeem at `till`: its ledger row's id.
async fn transact(till: &Till, member: &str, points: i64, tx_type: TxType) -> i64 {
    till.apply(&PointsRequest {
        note: Some("at the till"),
        ..points_request(member, tx_type, points)
    })
    .await
    .unwrap()
    .transaction_id
}
