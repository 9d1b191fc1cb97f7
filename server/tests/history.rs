//! The manager's history: filters, keyset pages, the sums (asked for apart from the pages), the CSV export and
//! voids, against the real database.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use app::auth::db::Staff;
use app::history::db::{
    CSV_HEADER, Cursor, history_csv, history_page, history_summary, program_clock, push_page_query,
    void,
};
use app::history::{
    CsvQuery, csv_download, parse_filter, void_outcome_from_query, void_return_path,
};
use app::points::db::PointsRequest;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures::StreamExt;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{
    DailyPoints, HistoryFilter, HistorySummary, HistoryTotals, LedgerEntry, Role, TxType,
};
use server::testkit::{TestDb, TestServer, Till, member_of, new_program, points_request};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use tokio::sync::Barrier;
use uuid::Uuid;

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn at(d: u32, h: u32, m: u32, s: u32, micros: u32) -> DateTime<Utc> {
    day(d).and_hms_micro_opt(h, m, s, micros).unwrap().and_utc()
}

fn session_of(program_id: Uuid, id: Uuid, role: Role) -> Staff {
    Staff {
        id,
        program_id,
        program_name: "Test program".into(),
        time_zone: "UTC".into(),
        name: "Someone".into(),
        email: "someone@example.com".into(),
        role,
        csrf_token: "csrf".into(),
    }
}

struct StaffMember {
    id: Uuid,
    email: String,
    name: String,
}

/// One ledger row the test wrote, as the test knows it.
#[derive(Debug, Clone)]
struct Known {
    id: i64,
    member: String,
    tx_type: TxType,
    points: i64,
    balance_after: i64,
    staff: Option<usize>,
    created_at: DateTime<Utc>,
    description: String,
}

struct Seeded {
    rows: Vec<Known>,
    members: Vec<String>,
    staff: Vec<StaffMember>,
}

/// Rows on six days of March 2026, at whole-day boundaries and at many shared instants, for three members
/// and two staff members (and none), written straight into the ledger in shuffled order (so id order is not
/// time order), with balances that are the sums of their ledgers.
async fn seeded_history(db: &TestDb) -> Seeded {
    let mut next = xorshift(17);
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(db.member(0).await);
    }
    let mut staff = Vec::new();
    for (email, name, role) in [
        ("alice@example.com", "Alice Manager", Role::Manager),
        ("bob@example.com", "Bob Clerk", Role::Clerk),
    ] {
        staff.push(StaffMember {
            id: db.staff_named(db.program_id, email, name, role).await,
            email: email.into(),
            name: name.into(),
        });
    }
    // Shared instants: many rows at exactly the same moment.
    let shared = [at(3, 10, 0, 0, 0), at(4, 15, 30, 0, 123_456)];
    let mut times = vec![
        at(2, 0, 0, 0, 0),
        at(2, 23, 59, 59, 999_999),
        at(3, 0, 0, 0, 0),
        at(1, 0, 0, 0, 0),
        at(6, 23, 59, 59, 999_999),
    ];
    for _ in 0..115 {
        times.push(match next() % 4 {
            0 => shared[(next() % 2) as usize],
            _ => at(
                (next() % 6) as u32 + 1,
                (next() % 24) as u32,
                (next() % 60) as u32,
                (next() % 60) as u32,
                (next() % 1_000_000) as u32,
            ),
        });
    }
    let notes = [
        "coffee",
        "birthday bonus, with a comma",
        "said \"thanks\"",
        "two\nlines",
        "=SUM(A1:A9)",
        "@mention",
        "",
    ];
    let mut rows: Vec<Known> = times
        .into_iter()
        .map(|created_at| Known {
            id: 0,
            member: members[(next() % 3) as usize].clone(),
            tx_type: TxType::Earn,
            points: (next() % 100 + 1) as i64,
            balance_after: 0,
            staff: match next() % 3 {
                0 => None,
                n => Some(n as usize - 1),
            },
            created_at,
            description: notes[(next() % notes.len() as u64) as usize].into(),
        })
        .collect();
    // Types and balances in time order, so no balance is ever below zero.
    rows.sort_by_key(|r| r.created_at);
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    for row in &mut rows {
        let balance = balances.entry(row.member.clone()).or_default();
        if *balance >= row.points && next().is_multiple_of(3) {
            row.tx_type = TxType::Redeem;
            *balance -= row.points;
        } else {
            *balance += row.points;
        }
        row.balance_after = *balance;
    }
    let mut order: Vec<(u64, usize)> = (0..rows.len()).map(|i| (next(), i)).collect();
    order.sort();
    for (_, i) in order {
        let row = &mut rows[i];
        row.id = sqlx::query_scalar(
            "insert into transactions
                (program_id, member_id, points, type, description, staff_id, balance_after, created_at)
             select $1, m.id, $3, $4, nullif($5, ''), $6, $7, $8
               from passes_master m where m.program_id = $1 and m.external_id = $2
             returning id",
        )
        .bind(db.program_id)
        .bind(&row.member)
        .bind(row.points as i32)
        .bind(row.tx_type.as_sql())
        .bind(&row.description)
        .bind(row.staff.map(|s| staff[s].id))
        .bind(row.balance_after as i32)
        .bind(row.created_at)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    }
    for (member, balance) in &balances {
        sqlx::query("update passes_master set points = $2 where external_id = $1")
            .bind(member)
            .bind(*balance as i32)
            .execute(&db.owner)
            .await
            .unwrap();
    }
    assert!(db.invariant_violations().await.is_empty());
    Seeded {
        rows,
        members,
        staff,
    }
}

impl Seeded {
    /// What the filter must match, newest first, worked out here rather than in SQL.
    fn expected(&self, filter: &HistoryFilter) -> Vec<&Known> {
        let mut rows: Vec<&Known> = self
            .rows
            .iter()
            .filter(|r| {
                filter
                    .from
                    .is_none_or(|from| r.created_at.date_naive() >= from)
            })
            .filter(|r| filter.to.is_none_or(|to| r.created_at.date_naive() <= to))
            .filter(|r| filter.tx_type.is_none_or(|t| r.tx_type == t))
            .filter(|r| filter.member.as_ref().is_none_or(|m| &r.member == m))
            .filter(|r| {
                filter
                    .staff
                    .as_ref()
                    .is_none_or(|email| r.staff.is_some_and(|s| &self.staff[s].email == email))
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        rows
    }

    fn staff_name(&self, row: &Known) -> Option<String> {
        row.staff.map(|s| self.staff[s].name.clone())
    }
}

fn sums(rows: &[&Known]) -> HistorySummary {
    let mut totals = HistoryTotals::default();
    let mut days: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    for row in rows {
        totals.transactions += 1;
        let day = days.entry(row.created_at.date_naive()).or_default();
        match row.tx_type {
            TxType::Earn => {
                totals.earned += row.points;
                day.0 += row.points;
            }
            TxType::Redeem => {
                totals.redeemed += row.points;
                day.1 += row.points;
            }
        }
    }
    let daily = days
        .into_iter()
        .map(|(day, (earned, redeemed))| DailyPoints {
            day,
            earned,
            redeemed,
        })
        .collect();
    HistorySummary { totals, daily }
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

#[tokio::test]
async fn each_filter_and_their_combination_match_exactly_the_rows_they_name() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    let (m, alice, bob) = (
        &seeded.members,
        seeded.staff[0].email.clone(),
        seeded.staff[1].email.clone(),
    );
    let filters = [
        HistoryFilter::default(),
        HistoryFilter {
            from: Some(day(3)),
            ..Default::default()
        },
        HistoryFilter {
            to: Some(day(2)),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(2)),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(4)),
            to: Some(day(5)),
            ..Default::default()
        },
        HistoryFilter {
            tx_type: Some(TxType::Earn),
            ..Default::default()
        },
        HistoryFilter {
            tx_type: Some(TxType::Redeem),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(m[0].clone()),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(m[2].clone()),
            ..Default::default()
        },
        HistoryFilter {
            staff: Some(alice.clone()),
            ..Default::default()
        },
        HistoryFilter {
            staff: Some(bob.clone()),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(5)),
            tx_type: Some(TxType::Earn),
            member: Some(m[1].clone()),
            staff: Some(alice.clone()),
        },
    ];
    let everything = seeded.rows.len();
    for filter in &filters {
        let expected = seeded.expected(filter);
        assert!(
            !expected.is_empty(),
            "a filter that matches nothing proves little: {filter:?}"
        );
        if filter != &HistoryFilter::default() {
            assert!(
                expected.len() < everything,
                "{filter:?} must leave rows out"
            );
        }
        let entries = walk(&db, filter, 7).await;
        assert_eq!(
            ids(&entries),
            expected.iter().map(|r| r.id).collect::<Vec<_>>(),
            "{filter:?}"
        );
        for (entry, known) in entries.iter().zip(&expected) {
            assert_eq!(entry.external_id, known.member);
            assert_eq!(entry.tx_type, known.tx_type);
            assert_eq!(entry.points, known.points);
            assert_eq!(entry.balance_after, known.balance_after);
            assert_eq!(entry.created_at, known.created_at);
            assert_eq!(entry.staff_name, seeded.staff_name(known));
            assert_eq!(
                entry.description.as_deref().unwrap_or(""),
                known.description
            );
        }
        let summary = history_summary(&db.app, db.program_id, filter)
            .await
            .unwrap();
        assert_eq!(summary, sums(&expected), "{filter:?}");
    }

    // Whole days, inclusive, in UTC: the first and last microsecond of 2 March are in, 3 March's first is out.
    let second_of_march = walk(
        &db,
        &HistoryFilter {
            from: Some(day(2)),
            to: Some(day(2)),
            ..Default::default()
        },
        100,
    )
    .await;
    let times: HashSet<DateTime<Utc>> = second_of_march.iter().map(|e| e.created_at).collect();
    assert!(times.contains(&at(2, 0, 0, 0, 0)));
    assert!(times.contains(&at(2, 23, 59, 59, 999_999)));
    assert!(!times.contains(&at(3, 0, 0, 0, 0)));

    // A member or staff member the program does not have matches nothing; it is not an error.
    for filter in [
        HistoryFilter {
            member: Some("MBR-ZZZZZZZZZZ".into()),
            ..Default::default()
        },
        HistoryFilter {
            staff: Some("nobody@example.com".into()),
            ..Default::default()
        },
    ] {
        let page = history_page(&db.app, db.program_id, &filter, None, 10)
            .await
            .unwrap();
        assert!(page.entries.is_empty() && page.next_cursor.is_none());
        let summary = history_summary(&db.app, db.program_id, &filter)
            .await
            .unwrap();
        assert_eq!(summary.totals, HistoryTotals::default());
        assert!(summary.daily.is_empty());
    }

    // Another program's history is not this one's.
    let other = new_program(&db.owner, "Other program").await;
    let page = history_page(&db.app, other, &HistoryFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    let summary = history_summary(&db.app, other, &HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(summary, HistorySummary::default());
}

#[tokio::test]
async fn totals_and_daily_sums_are_sqls_own_sums() {
    let db = TestDb::new().await;
    seeded_history(&db).await;
    let HistorySummary { totals, daily } =
        history_summary(&db.app, db.program_id, &HistoryFilter::default())
            .await
            .unwrap();
    let (count, earned, redeemed): (i64, i64, i64) = sqlx::query_as(
        "select count(*),
                sum(points) filter (where type = 'EARN'),
                sum(points) filter (where type = 'REDEEM')
           from transactions",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        totals,
        HistoryTotals {
            transactions: count,
            earned,
            redeemed
        }
    );
    let by_day: Vec<(NaiveDate, i64, i64)> = sqlx::query_as(
        "select d::date,
                coalesce(sum(points) filter (where type = 'EARN'), 0),
                coalesce(sum(points) filter (where type = 'REDEEM'), 0)
           from generate_series(timestamp '2026-03-01', timestamp '2026-03-06', interval '1 day') d
           join transactions t on t.created_at >= d at time zone 'UTC'
                              and t.created_at < (d + interval '1 day') at time zone 'UTC'
          group by d order by d",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(by_day.len(), 6);
    assert_eq!(
        daily,
        by_day
            .into_iter()
            .map(|(day, earned, redeemed)| DailyPoints {
                day,
                earned,
                redeemed
            })
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn keyset_pages_over_300_rows_with_shared_timestamps_skip_and_repeat_nothing() {
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let members = [db.member(0).await, db.member(0).await];
    let earn = |i: usize| (members[i % 2].as_str(), (i % 9 + 1) as i64);
    // Rows made in one database transaction share its now(): 200 rows at one instant, 40 at another. The
    // counter commits each change at once, so these are made by the function itself.
    let mut tx = db.owner.begin().await.unwrap();
    for i in 0..200 {
        let (member, points) = earn(i);
        earn_in(&mut tx, db.program_id, member, points).await;
    }
    tx.commit().await.unwrap();
    for i in 0..60 {
        let (member, points) = earn(i);
        till.earn(member, points).await.unwrap();
    }
    let mut tx = db.owner.begin().await.unwrap();
    for i in 0..40 {
        let (member, points) = earn(i);
        earn_in(&mut tx, db.program_id, member, points).await;
    }
    tx.commit().await.unwrap();

    let expected: Vec<i64> =
        sqlx::query_scalar("select id from transactions order by created_at desc, id desc")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(expected.len(), 300);
    let instants: i64 = sqlx::query_scalar("select count(distinct created_at) from transactions")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(instants <= 62, "the rows must share instants: {instants}");

    for limit in [1, 7, 50, 199, 200, 201, 250, 300, 1000] {
        let entries = walk(&db, &HistoryFilter::default(), limit).await;
        let seen = ids(&entries);
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            seen.len(),
            "a row was repeated"
        );
        assert_eq!(seen, expected, "limit {limit}");
    }
    let summary = history_summary(&db.app, db.program_id, &HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(summary.totals.transactions, 300);

    // Rows written while a manager pages through do not shift the pages: the older pages hold what they held.
    let first = history_page(&db.app, db.program_id, &HistoryFilter::default(), None, 25)
        .await
        .unwrap();
    for i in 0..30 {
        let (member, points) = earn(i);
        till.earn(member, points).await.unwrap();
    }
    let mut seen = ids(&first.entries);
    let mut cursor = first.next_cursor;
    while let Some(next) = cursor {
        let page = history_page(
            &db.app,
            db.program_id,
            &HistoryFilter::default(),
            Some(&next),
            25,
        )
        .await
        .unwrap();
        seen.extend(ids(&page.entries));
        cursor = page.next_cursor;
    }
    assert_eq!(seen, expected);

    // A cursor is the row it names, to the microsecond.
    let cursor = Cursor {
        created_at: at(3, 10, 0, 0, 123_457),
        id: 42,
    };
    assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
    for broken in ["", "garbage", "12_x", "x_12", "99999999999999999999_1"] {
        let err = history_page(
            &db.app,
            db.program_id,
            &HistoryFilter::default(),
            Some(broken),
            10,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "This link to older transactions is broken: start again from the newest.",
            "{broken:?}"
        );
    }
}

async fn collect_csv(
    db: &TestDb,
    filter: &HistoryFilter,
) -> (Vec<Vec<u8>>, Vec<csv::StringRecord>) {
    let chunks: Vec<Vec<u8>> = history_csv(db.app.clone(), db.program_id, filter.clone())
        .map(|chunk| chunk.unwrap())
        .collect()
        .await;
    let bytes = chunks.concat();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(CSV_HEADER.to_vec())
    );
    let records = reader.records().map(|r| r.unwrap()).collect();
    (chunks, records)
}

/// The CSV cell a note becomes: formulas are defused.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[tokio::test]
async fn the_csv_export_streams_exactly_the_filtered_rows() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    // A void, so the voids column has something in it.
    let voided = seeded
        .rows
        .iter()
        .find(|r| r.tx_type == TxType::Redeem)
        .unwrap();
    let void_entry = void(&db.app, db.program_id, None, voided.id, "rang up twice")
        .await
        .unwrap();
    for filter in [
        HistoryFilter::default(),
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(4)),
            tx_type: Some(TxType::Earn),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(seeded.members[0].clone()),
            staff: Some(seeded.staff[1].email.clone()),
            ..Default::default()
        },
    ] {
        let entries = walk(&db, &filter, 500).await;
        let (_, records) = collect_csv(&db, &filter).await;
        assert!(!records.is_empty());
        assert_eq!(records.len(), entries.len(), "{filter:?}");
        for (record, entry) in records.iter().zip(&entries) {
            assert_eq!(record[0].parse::<i64>().unwrap(), entry.id);
            assert_eq!(
                DateTime::parse_from_rfc3339(&record[1]).unwrap(),
                entry.created_at
            );
            assert_eq!(&record[2], entry.external_id);
            assert_eq!(&record[3], entry.tx_type.as_sql());
            assert_eq!(record[4].parse::<i64>().unwrap(), entry.points);
            assert_eq!(record[5].parse::<i64>().unwrap(), entry.balance_after);
            assert_eq!(&record[6], entry.staff_name.as_deref().unwrap_or(""));
            assert_eq!(record[7], cell(entry.description.as_deref().unwrap_or("")));
            assert_eq!(
                record[8],
                entry.voids.map(|v| v.to_string()).unwrap_or_default()
            );
        }
    }
    let (_, records) = collect_csv(&db, &HistoryFilter::default()).await;
    let void_record = records
        .iter()
        .find(|r| r[0] == void_entry.id.to_string())
        .unwrap();
    assert_eq!(void_record[8], voided.id.to_string());
    assert!(
        records.iter().any(|r| &r[7] == "'=SUM(A1:A9)"),
        "a formula is written as text"
    );
    assert!(records.iter().any(|r| &r[7] == "two\nlines"));
    assert!(records.iter().any(|r| &r[7] == "said \"thanks\""));

    // A large export arrives in many chunks as the rows are read, not as one body built in memory.
    let member = db.member(0).await;
    sqlx::query(
        "insert into transactions (program_id, member_id, points, type, balance_after, description)
         select $1, m.id, 1, 'EARN', g, 'bulk row ' || g
           from passes_master m, generate_series(1, 6000) g
          where m.program_id = $1 and m.external_id = $2",
    )
    .bind(db.program_id)
    .bind(&member)
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::query("update passes_master set points = 6000 where external_id = $1")
        .bind(&member)
        .execute(&db.owner)
        .await
        .unwrap();
    assert!(db.invariant_violations().await.is_empty());
    let filter = HistoryFilter {
        member: Some(member),
        ..Default::default()
    };
    let (chunks, records) = collect_csv(&db, &filter).await;
    assert_eq!(records.len(), 6000);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|c| c.len() < 64 * 1024));
}

#[tokio::test]
async fn the_csv_download_is_for_signed_in_managers_and_names_its_file() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    let manager = session_of(db.program_id, seeded.staff[0].id, Role::Manager);
    let clerk = session_of(db.program_id, seeded.staff[1].id, Role::Clerk);
    let body_json = |body: axum::body::Body| async move {
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        serde_json::from_slice::<LoyaltyError>(&bytes).unwrap()
    };

    let response = csv_download(State(db.app.clone()), None, Query(CsvQuery::default())).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body_json(response.into_body()).await,
        LoyaltyError::NotSignedIn
    );

    let response = csv_download(
        State(db.app.clone()),
        Some(axum::Extension(clerk)),
        Query(CsvQuery::default()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let err = body_json(response.into_body()).await;
    assert_eq!(err, LoyaltyError::ManagersOnly);
    assert_eq!(err.to_string(), "This page is for managers.");

    let response = csv_download(
        State(db.app.clone()),
        Some(axum::Extension(manager.clone())),
        Query(CsvQuery {
            from: Some("1 March".into()),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body_json(response.into_body()).await.to_string(),
        "Enter the start date as year-month-day, like 2026-11-27."
    );

    let response = csv_download(
        State(db.app.clone()),
        Some(axum::Extension(manager)),
        Query(CsvQuery {
            tx_type: Some("redeem".into()),
            member: Some(seeded.members[1].to_lowercase()),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"history.csv\""
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let ids: Vec<i64> = csv::Reader::from_reader(bytes.as_ref())
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .collect();
    let expected = seeded.expected(&HistoryFilter {
        tx_type: Some(TxType::Redeem),
        member: Some(seeded.members[1].clone()),
        ..Default::default()
    });
    assert!(!expected.is_empty());
    assert_eq!(ids, expected.iter().map(|r| r.id).collect::<Vec<_>>());
}

#[test]
fn filters_are_read_as_the_form_sends_them_and_bad_ones_are_explained() {
    assert_eq!(
        parse_filter(Some(""), Some("  "), Some(""), Some(""), Some("")).unwrap(),
        HistoryFilter::default()
    );
    assert_eq!(
        parse_filter(
            Some("2026-03-01"),
            Some("2026-03-01"),
            Some("earn"),
            Some(" mbr-abcd2345 "),
            Some(" Alice@Example.COM ")
        )
        .unwrap(),
        HistoryFilter {
            from: Some(day(1)),
            to: Some(day(1)),
            tx_type: Some(TxType::Earn),
            member: Some("MBR-ABCD2345".into()),
            staff: Some("alice@example.com".into()),
        }
    );
    assert_eq!(
        parse_filter(None, None, Some("ALL"), None, None).unwrap(),
        HistoryFilter::default()
    );
    let message = |r: Result<HistoryFilter, LoyaltyError>| r.unwrap_err().to_string();
    assert_eq!(
        message(parse_filter(Some("03/01/2026"), None, None, None, None)),
        "Enter the start date as year-month-day, like 2026-11-27."
    );
    assert_eq!(
        message(parse_filter(None, Some("2026-02-30"), None, None, None)),
        "Enter the end date as year-month-day, like 2026-11-27."
    );
    assert_eq!(
        message(parse_filter(
            Some("2026-03-02"),
            Some("2026-03-01"),
            None,
            None,
            None
        )),
        "The start date is after the end date."
    );
    assert_eq!(
        message(parse_filter(None, None, Some("refund"), None, None)),
        "Choose earn, redeem or all types."
    );
}

/// The query parameters of a path, as the page reads them.
fn query_map(path: &str) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = path
        .split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn a_plain_form_void_goes_back_to_the_page_it_came_from_with_its_outcome() {
    let entry = LedgerEntry {
        id: 15,
        external_id: "MBR-ABCD2345".into(),
        tx_type: TxType::Redeem,
        points: 5,
        balance_after: 0,
        description: None,
        staff_name: None,
        created_at: Utc::now(),
        local_at: Utc::now().naive_utc(),
        voids: Some(12),
        voided_by: None,
    };
    assert_eq!(
        void_return_path(
            Some("http://shop.example:3000/history?type=EARN&void_error=ALREADY_VOIDED&cursor=1_2"),
            12,
            &Ok(entry)
        ),
        "/history?type=EARN&cursor=1_2&voided=12"
    );
    assert_eq!(
        void_return_path(
            Some("https://evil.example/elsewhere?x=1"),
            12,
            &Err(LoyaltyError::AlreadyVoided)
        ),
        "/history?void_error=ALREADY_VOIDED"
    );
    for err in [
        LoyaltyError::InsufficientFunds { balance: 10 },
        LoyaltyError::AlreadyVoided,
        LoyaltyError::CannotVoidAVoid,
        LoyaltyError::TransactionNotFound,
        LoyaltyError::ManagersOnly,
        LoyaltyError::CsrfRejected,
        LoyaltyError::InvalidInput {
            message: "Give a reason for the void, up to 400 characters.".into(),
        },
    ] {
        let path = void_return_path(None, 12, &Err(err.clone()));
        assert_eq!(
            void_outcome_from_query(query_map(&path)),
            Some(Err(err)),
            "{path}"
        );
    }
    assert_eq!(
        void_outcome_from_query(query_map("/history?voided=12")),
        Some(Ok(12))
    );
    assert_eq!(
        void_outcome_from_query(query_map("/history?type=EARN")),
        None
    );
    // Only codes travel: a crafted link cannot put words on the page.
    assert_eq!(
        void_outcome_from_query(query_map(
            "/history?void_error=INVALID_INPUT&message=Call+us"
        )),
        Some(Err(LoyaltyError::InvalidInput {
            message: "Give a reason for the void, up to 400 characters.".into()
        }))
    );
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

/// An earn through the function itself, inside `tx`: rows made in one transaction share its now().
async fn earn_in(tx: &mut PgConnection, program_id: Uuid, member: &str, points: i64) {
    let answer: serde_json::Value = sqlx::query_scalar(
        "select public.process_membership_transaction($1, $2, $3, 'EARN', null)",
    )
    .bind(program_id)
    .bind(member)
    .bind(points)
    .fetch_one(tx)
    .await
    .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
}

#[tokio::test]
async fn a_void_is_a_linked_compensating_entry_that_restores_the_balance() {
    let db = TestDb::new().await;
    let manager = db
        .staff_named(
            db.program_id,
            "alice@example.com",
            "Alice Manager",
            Role::Manager,
        )
        .await;
    let member = db.member(100).await;
    let till = Till::clerk(&db).await;
    let earned = transact(&till, &member, 50, TxType::Earn).await;
    assert_eq!(db.balance(&member).await, 150);

    let void_of_earn = void(
        &db.app,
        db.program_id,
        Some(manager),
        earned,
        "  wrong member  ",
    )
    .await
    .unwrap();
    assert_eq!(void_of_earn.tx_type, TxType::Redeem);
    assert_eq!(void_of_earn.points, 50);
    assert_eq!(void_of_earn.voids, Some(earned));
    assert_eq!(void_of_earn.balance_after, 100);
    assert_eq!(void_of_earn.external_id, member);
    assert_eq!(void_of_earn.staff_name.as_deref(), Some("Alice Manager"));
    assert_eq!(
        void_of_earn.description.as_deref(),
        Some(format!("Void of #{earned}: wrong member").as_str())
    );
    assert_eq!(db.balance(&member).await, 100);

    let redeemed = transact(&till, &member, 30, TxType::Redeem).await;
    let void_of_redeem = void(
        &db.app,
        db.program_id,
        Some(manager),
        redeemed,
        "customer kept the gift",
    )
    .await
    .unwrap();
    assert_eq!(void_of_redeem.tx_type, TxType::Earn);
    assert_eq!(void_of_redeem.balance_after, 100);
    assert_eq!(db.balance(&member).await, 100);
    assert!(db.invariant_violations().await.is_empty());

    // The history shows both ends of each link.
    let page = history_page(&db.app, db.program_id, &HistoryFilter::default(), None, 50)
        .await
        .unwrap();
    let by_id: BTreeMap<i64, &LedgerEntry> = page.entries.iter().map(|e| (e.id, e)).collect();
    assert_eq!(by_id[&earned].voided_by, Some(void_of_earn.id));
    assert_eq!(by_id[&redeemed].voided_by, Some(void_of_redeem.id));
    assert_eq!(by_id[&void_of_earn.id].voids, Some(earned));
    assert_eq!(by_id[&void_of_earn.id].voided_by, None);
    assert_eq!(page.entries.len(), 5);
}

#[tokio::test]
async fn refused_voids_say_why_and_write_nothing() {
    let db = TestDb::new().await;
    let member = db.member(0).await;
    let till = Till::clerk(&db).await;
    let earned = transact(&till, &member, 50, TxType::Earn).await;
    let spent = transact(&till, &member, 40, TxType::Redeem).await;

    let too_long = "x".repeat(401);
    let refusals: Vec<(i64, &str, LoyaltyError, &str)> = vec![
        (
            earned,
            "points given by mistake",
            LoyaltyError::InsufficientFunds { balance: 10 },
            "Not enough points: the balance is 10 points.",
        ),
        (
            987_654,
            "no such row",
            LoyaltyError::TransactionNotFound,
            "No such transaction in this program.",
        ),
        (spent, "", LoyaltyError::InvalidDescription, ""),
        (spent, "   \n ", LoyaltyError::InvalidDescription, ""),
        (spent, &too_long, LoyaltyError::InvalidDescription, ""),
    ];
    let rows = db.ledger_rows().await;
    for (id, reason, expected, message) in refusals {
        let err = void(&db.app, db.program_id, None, id, reason)
            .await
            .unwrap_err();
        assert_eq!(err, expected, "{id} {reason:?}");
        if !message.is_empty() {
            assert_eq!(err.to_string(), message);
        }
        assert_eq!(db.ledger_rows().await, rows);
        assert_eq!(db.balance(&member).await, 10);
    }
    let answer: serde_json::Value = sqlx::query_scalar("select void_transaction($1, $2, null)")
        .bind(db.program_id)
        .bind(spent)
        .fetch_one(&db.app)
        .await
        .unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"success": false, "error": "INVALID_DESCRIPTION"})
    );

    // 400 characters, any characters, is a reason.
    let void_of_redeem = void(&db.app, db.program_id, None, spent, &"é".repeat(400))
        .await
        .unwrap();
    assert_eq!(db.balance(&member).await, 50);
    let rows = db.ledger_rows().await;
    assert_eq!(
        void(&db.app, db.program_id, None, spent, "again").await,
        Err(LoyaltyError::AlreadyVoided)
    );
    assert_eq!(
        void(
            &db.app,
            db.program_id,
            None,
            void_of_redeem.id,
            "undo the undo"
        )
        .await,
        Err(LoyaltyError::CannotVoidAVoid)
    );
    assert_eq!(
        LoyaltyError::CannotVoidAVoid.to_string(),
        "A void cannot itself be voided."
    );
    assert_eq!(db.ledger_rows().await, rows);
    assert_eq!(db.balance(&member).await, 50);

    // Another program's transaction does not exist here, and stays as it was.
    let other = new_program(&db.owner, "Other program").await;
    let theirs = member_of(&db.owner, other, 30).await;
    let their_tx: i64 = sqlx::query_scalar("select id from transactions where program_id = $1")
        .bind(other)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(
        void(&db.app, db.program_id, None, their_tx, "not ours").await,
        Err(LoyaltyError::TransactionNotFound)
    );
    assert_eq!(db.balance(&theirs).await, 30);
    assert_eq!(db.ledger_rows().await, rows + 1);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn race_test_32_concurrent_voids_of_one_transaction_one_succeeds() {
    const VOIDERS: usize = 32;
    let db = TestDb::with_pool_size(VOIDERS as u32).await;
    let member = db.member(100).await;
    let target = last_id(&db).await;
    let barrier = Arc::new(Barrier::new(VOIDERS));
    let tasks: Vec<_> = (0..VOIDERS)
        .map(|i| {
            let (pool, program_id, barrier) = (db.app.clone(), db.program_id, barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                void(&pool, program_id, None, target, &format!("attempt {i}")).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(
        answers.iter().filter(|a| a.is_ok()).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|a| a.is_err())
            .all(|a| a == &Err(LoyaltyError::AlreadyVoided)),
        "{answers:?}"
    );
    let voids: i64 = sqlx::query_scalar("select count(*) from transactions where voids_id = $1")
        .bind(target)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(voids, 1);
    assert_eq!(db.balance(&member).await, 0);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn void_transaction_is_hardened_like_the_other_functions() {
    let db = TestDb::new().await;
    let (config, public_may, app_may): (Option<Vec<String>>, bool, bool) = sqlx::query_as(
        "select p.proconfig,
                has_function_privilege('bystander', p.oid, 'execute'),
                has_function_privilege('loyalty_app', p.oid, 'execute')
           from pg_proc p
          where p.oid = 'public.void_transaction(uuid, bigint, text, uuid)'::regprocedure and p.prosecdef",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        config,
        Some(vec!["search_path=pg_catalog, pg_temp".to_owned()])
    );
    assert!(!public_may);
    assert!(app_may);
}

/// 200,000 rows in the program (and 20,000 in another), spread over 200 members, two staff members and
/// 277 days: enough that a sort of the program would show.
async fn big_ledger(db: &TestDb) -> (String, String) {
    let alice = db
        .staff_named(db.program_id, "alice@example.com", "Alice", Role::Manager)
        .await;
    let bob = db
        .staff_named(db.program_id, "bob@example.com", "Bob", Role::Clerk)
        .await;
    let other = new_program(&db.owner, "Other program").await;
    for (program, members, rows) in [(db.program_id, 200, 200_000), (other, 20, 20_000)] {
        sqlx::query("select create_member_pass($1, 'MBR') from generate_series(1, $2)")
            .bind(program)
            .bind(members)
            .execute(&db.owner)
            .await
            .unwrap();
        sqlx::query(
            "with m as (select id, row_number() over (order by id) - 1 as n
                          from passes_master where program_id = $1)
             insert into transactions (program_id, member_id, points, type, staff_id, balance_after, created_at)
             select $1, m.id, 1, 'EARN',
                    case when $1 = $5 then case g % 3 when 0 then $3::uuid when 1 then $4::uuid end end,
                    g / $2 + 1,
                    timestamptz '2026-01-01 00:00:00+00' + g * interval '2 minutes'
               from generate_series(0, $6 - 1) g join m on m.n = g % $2
              order by g",
        )
        .bind(program)
        .bind(members)
        .bind(alice)
        .bind(bob)
        .bind(db.program_id)
        .bind(rows)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    sqlx::query(
        "update passes_master m set points = (select count(*) from transactions t
                                                where t.program_id = m.program_id and t.member_id = m.id)",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::raw_sql("vacuum analyze transactions")
        .execute(&db.owner)
        .await
        .unwrap();
    assert!(db.invariant_violations().await.is_empty());
    let member: String = sqlx::query_scalar(
        "select external_id from passes_master where program_id = $1 order by id limit 1",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    (member, "alice@example.com".into())
}

async fn explain(db: &TestDb, filter: &HistoryFilter, cursor: Option<Cursor>) -> String {
    let mut sql =
        QueryBuilder::<Postgres>::new("explain (analyze, costs off, timing off, summary on) ");
    let clock = program_clock(&db.app, db.program_id, filter).await.unwrap();
    push_page_query(&mut sql, db.program_id, filter, &clock, cursor, 50);
    let lines: Vec<String> = sql.build_query_scalar().fetch_all(&db.app).await.unwrap();
    lines.join("\n")
}

#[tokio::test]
async fn every_first_page_reads_an_index_in_order_not_a_sort_of_the_program() {
    let db = TestDb::new().await;
    let (member, staff) = big_ledger(&db).await;
    let cases = [
        (
            "first page",
            HistoryFilter::default(),
            None,
            "transactions_history_idx",
        ),
        (
            "an older page",
            HistoryFilter::default(),
            Some(Cursor {
                created_at: "2026-03-15T12:00:00Z".parse().unwrap(),
                id: 1,
            }),
            "transactions_history_idx",
        ),
        (
            "a type",
            HistoryFilter {
                tx_type: Some(TxType::Earn),
                ..Default::default()
            },
            None,
            "transactions_history_idx",
        ),
        (
            "a date range",
            HistoryFilter {
                from: Some(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()),
                to: Some(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
                ..Default::default()
            },
            None,
            "transactions_history_idx",
        ),
        (
            "a member",
            HistoryFilter {
                member: Some(member),
                ..Default::default()
            },
            None,
            "transactions_member_history_idx",
        ),
        (
            "a staff member",
            HistoryFilter {
                staff: Some(staff),
                ..Default::default()
            },
            None,
            "transactions_staff_history_idx",
        ),
    ];
    for (name, filter, cursor, index) in cases {
        let plan = explain(&db, &filter, cursor).await;
        println!("-- {name}\n{plan}\n");
        assert!(
            plan.contains(&format!("Index Scan using {index} on transactions")),
            "{name}:\n{plan}"
        );
        assert!(!plan.contains("Sort"), "{name} sorts:\n{plan}");
        assert!(
            !plan.contains("Seq Scan on transactions"),
            "{name}:\n{plan}"
        );
    }
    let started = std::time::Instant::now();
    let page = history_page(&db.app, db.program_id, &HistoryFilter::default(), None, 50)
        .await
        .unwrap();
    let page_took = started.elapsed();
    let started = std::time::Instant::now();
    let summary = history_summary(&db.app, db.program_id, &HistoryFilter::default())
        .await
        .unwrap();
    println!(
        "first page: {page_took:?}; totals and the daily chart over {} rows, apart: {:?}",
        summary.totals.transactions,
        started.elapsed()
    );
    assert_eq!(page.entries.len(), 50);
    assert!(page.next_cursor.is_some());
    assert_eq!(summary.totals.transactions, 200_000);
}

/// One exchange with the running server, redirects not followed: status, headers, body.
async fn http(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client
        .request(method.parse().unwrap(), format!("{}{path}", server.url))
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn error_of(body: &[u8]) -> LoyaltyError {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn over_http_the_history_the_void_and_the_csv_are_for_managers_only() {
    let server = TestServer::start().await;
    let (addr, db) = (&server, &server.db);
    let manager = Till::sign_in(db, &server.manager).await;
    let clerk = Till::sign_in(db, &server.clerk).await;
    let (manager_cookie, clerk_cookie) = (manager.cookie.clone(), clerk.cookie.clone());
    let member = db.member(100).await;
    let target = last_id(db).await;
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let json = ("Accept", "application/json");
    let void_body =
        |csrf: &str, reason: &str| format!("csrf={csrf}&transaction_id={target}&reason={reason}");

    // Nobody signed in; a clerk.
    for (cookie, status, expected) in [
        (None, 401, LoyaltyError::NotSignedIn),
        (Some(clerk_cookie.as_str()), 403, LoyaltyError::ManagersOnly),
    ] {
        let mut headers = vec![form, json];
        if let Some(cookie) = cookie {
            headers.push(("Cookie", cookie));
        }
        let (got, _, body) = http(addr, "POST", "/api/history", &headers, "").await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
        let (got, _, body) = http(addr, "POST", "/api/history_summary", &headers, "").await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
        let csrf = clerk.csrf.clone();
        let (got, _, body) =
            http(addr, "POST", "/api/void", &headers, &void_body(&csrf, "x")).await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
        let (got, _, body) = http(addr, "GET", "/api/history.csv", &headers, "").await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
    }
    assert_eq!(db.balance(&member).await, 100);

    // A manager reads the history.
    let headers = [form, json, ("Cookie", manager_cookie.as_str())];
    let (status, _, body) = http(addr, "POST", "/api/history", &headers, "tx_type=EARN").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let page: loyalty_core::wire::HistoryPage = serde_json::from_slice(&body).unwrap();
    assert_eq!(ids(&page.entries), vec![target]);
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/history_summary",
        &headers,
        "tx_type=EARN",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let summary: HistorySummary = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        summary.totals,
        HistoryTotals {
            transactions: 1,
            earned: 100,
            redeemed: 0
        }
    );
    assert_eq!(summary.daily.len(), 1);
    for endpoint in ["/api/history", "/api/history_summary"] {
        let (status, _, body) = http(addr, "POST", endpoint, &headers, "from=yesterday").await;
        assert_eq!(status, 422, "{endpoint}");
        assert_eq!(
            error_of(&body).to_string(),
            "Enter the start date as year-month-day, like 2026-11-27."
        );
    }

    // A void needs the session's CSRF token and a reason.
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/void",
        &headers,
        &void_body("forged", "typo"),
    )
    .await;
    assert_eq!((status, error_of(&body)), (403, LoyaltyError::CsrfRejected));
    let csrf = manager.csrf.clone();
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/void",
        &headers,
        &void_body(&csrf, "+++"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        error_of(&body).to_string(),
        "Give a reason for the void, up to 400 characters."
    );
    assert_eq!(db.balance(&member).await, 100);

    // A plain HTML form (no JavaScript) is sent back to the page it came from, with the outcome.
    let referer = format!("{}/history?type=EARN&cursor=1_2", server.url);
    let html_form = [
        form,
        ("Accept", "text/html"),
        ("Cookie", manager_cookie.as_str()),
        ("Referer", referer.as_str()),
    ];
    let (status, headers_back, _) = http(
        addr,
        "POST",
        "/api/void",
        &html_form,
        &void_body(&csrf, "rang+up+twice"),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(
        headers_back["location"],
        format!("/history?type=EARN&cursor=1_2&voided={target}")
    );
    assert_eq!(db.balance(&member).await, 0);
    let (status, headers_back, _) = http(
        addr,
        "POST",
        "/api/void",
        &html_form,
        &void_body(&csrf, "again"),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(
        headers_back["location"],
        "/history?type=EARN&cursor=1_2&void_error=ALREADY_VOIDED"
    );

    // And the export, streamed.
    let (status, headers_back, body) = http(
        addr,
        "GET",
        "/api/history.csv?type=REDEEM&from=&member=",
        &[("Cookie", manager_cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers_back["content-disposition"],
        "attachment; filename=\"history.csv\""
    );
    assert_eq!(headers_back["transfer-encoding"], "chunked");
    let records: Vec<csv::StringRecord> = csv::Reader::from_reader(body.as_slice())
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][3], "REDEEM");
    assert_eq!(&records[0][8], target.to_string());
    assert_eq!(
        &records[0][1],
        DateTime::parse_from_rfc3339(&records[0][1])
            .unwrap()
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    );
}

/// The page as a browser without JavaScript gets it.
async fn page(addr: &TestServer, path: &str, cookie: &str) -> String {
    page_with_status(addr, path, cookie, 200).await
}

/// A page that says an error carries its status too.
async fn page_with_status(addr: &TestServer, path: &str, cookie: &str, expected: u16) -> String {
    let (status, _, body) = http(addr, "GET", path, &[("Cookie", cookie)], "").await;
    assert_eq!(status, expected, "{path}");
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn the_history_page_works_without_javascript() {
    let server = TestServer::start().await;
    let (addr, db) = (&server, &server.db);
    let manager = Till::sign_in(db, &server.manager).await;
    let at_counter = Till::sign_in(db, &server.clerk).await;
    let (csrf, manager, clerk) = (manager.csrf, manager.cookie, at_counter.cookie.clone());
    let member = db.member(0).await;
    for i in 0..60 {
        transact(&at_counter, &member, i % 7 + 1, TxType::Earn).await;
    }
    let redeemed = transact(&at_counter, &member, 3, TxType::Redeem).await;

    let html = page(addr, "/history", &manager).await;
    assert_eq!(
        html.matches("<tr id=\"tx-").count(),
        50,
        "a page of 50 rows"
    );
    assert!(
        html.contains(&format!("<tr id=\"tx-{redeemed}\"")),
        "newest first"
    );
    assert!(html.contains("<dd>61</dd>"), "the totals count every row");
    assert!(html.contains("<svg"), "the chart");
    assert!(html.contains("Points per day as a table"));
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "each void form carries the token"
    );
    assert!(html.contains("name=\"reason\""));
    assert!(html.contains("href=\"/api/history.csv\""));
    let older = html
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/history?cursor="))
        .expect("an Older link")
        .replace("&amp;", "&");
    let html = page(addr, &older, &manager).await;
    assert_eq!(html.matches("<tr id=\"tx-").count(), 11, "the rest");
    assert!(
        html.contains("<dd>61</dd>"),
        "the totals are the filter's, on every page"
    );
    assert!(!html.contains("rel=\"next\""), "no page after the last");

    // Filters travel in the address, into the form, the links and the export.
    let html = page(
        addr,
        &format!("/history?type=REDEEM&member={}", member.to_lowercase()),
        &manager,
    )
    .await;
    assert_eq!(html.matches("<tr id=\"tx-").count(), 1);
    assert!(html.contains(&format!(
        "href=\"/api/history.csv?type=REDEEM&amp;member={}\"",
        member.to_lowercase()
    )));
    assert!(html.contains("<option value=\"REDEEM\" selected"));

    // A void's outcome, as the plain form post leaves it in the address.
    let html = page(addr, &format!("/history?voided={redeemed}"), &manager).await;
    assert!(html.contains(&format!("Transaction #{redeemed} was voided.")));
    let html = page(
        addr,
        "/history?void_error=INSUFFICIENT_FUNDS&balance=10",
        &manager,
    )
    .await;
    assert!(html.contains("Not enough points: the balance is 10 points."));

    // Bad input and the wrong role are said in words.
    let html = page_with_status(
        addr,
        "/history?from=2026-03-02&to=2026-03-01",
        &manager,
        422,
    )
    .await;
    assert!(html.contains("The start date is after the end date."));
    let html = page_with_status(addr, "/history", &clerk, 403).await;
    assert!(html.contains("This page is for managers."));
    assert!(!html.contains("<tr id=\"tx-"));
}

#[tokio::test]
async fn summed_days_give_the_sums_the_rows_give_and_are_summed_once() {
    const TASKS: usize = 8;
    let db = TestDb::with_pool_size(TASKS as u32).await;
    let seeded = seeded_history(&db).await;
    let member = &seeded.members[0];
    let till = Till::clerk(&db).await;
    for points in [5, 6, 7] {
        till.earn(member, points).await.unwrap();
    }
    let filters = [
        HistoryFilter::default(),
        HistoryFilter {
            from: Some(day(3)),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(4)),
            ..Default::default()
        },
        HistoryFilter {
            tx_type: Some(TxType::Redeem),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(4)),
            tx_type: Some(TxType::Earn),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(member.clone()),
            ..Default::default()
        },
    ];
    let mut row_by_row = Vec::new();
    for filter in &filters {
        row_by_row.push(
            history_summary(&db.app, db.program_id, filter)
                .await
                .unwrap(),
        );
    }

    // Many servers summing at once sum each day once.
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (app, barrier) = (db.app.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app::history::db::roll_up_ledger_days(&app).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let (summed, rows_before_yesterday, next_day): (i64, i64, NaiveDate) = sqlx::query_as(
        "select (select sum(tx_count)::bigint from ledger_days where program_id = $1),
                (select count(*) from transactions
                  where program_id = $1 and created_at < (current_date - 1)::timestamp at time zone 'UTC'),
                (select next_day from ledger_days_through where program_id = $1)",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(summed, seeded.rows.len() as i64);
    assert_eq!(summed, rows_before_yesterday);
    assert_eq!(next_day, Utc::now().date_naive().pred_opt().unwrap());

    for (filter, expected) in filters.iter().zip(&row_by_row) {
        let summary = history_summary(&db.app, db.program_id, filter)
            .await
            .unwrap();
        assert_eq!(&summary, expected, "{filter:?}");
    }

    // Today's changes, not summed yet, count as they come; summing again changes nothing.
    till.earn(member, 11).await.unwrap();
    app::history::db::roll_up_ledger_days(&db.app)
        .await
        .unwrap();
    let summary = history_summary(&db.app, db.program_id, &HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(
        (summary.totals.transactions, summary.totals.earned),
        (
            row_by_row[0].totals.transactions + 1,
            row_by_row[0].totals.earned + 11
        )
    );
    let summed_again: i64 =
        sqlx::query_scalar("select sum(tx_count)::bigint from ledger_days where program_id = $1")
            .bind(db.program_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(summed_again, summed);
}

#[tokio::test]
async fn the_server_sums_the_days_when_it_starts() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    let server =
        server::testkit::ServerProcess::start(env!("CARGO_BIN_EXE_server"), &db.owner_url(), &[])
            .await;
    let summed = async {
        loop {
            let summed: Option<i64> = sqlx::query_scalar(
                "select sum(d.tx_count)::bigint from ledger_days d
                  where d.program_id = $1
                    and exists (select 1 from ledger_days_through x where x.program_id = d.program_id)",
            )
            .bind(db.program_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
            if let Some(summed) = summed {
                return summed;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let summed = tokio::time::timeout(std::time::Duration::from_secs(30), summed)
        .await
        .unwrap_or_else(|_| panic!("the server did not sum the days:\n{}", server.logs()));
    assert_eq!(summed, seeded.rows.len() as i64);
}
