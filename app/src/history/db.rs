//! The program's ledger as a manager reads it: filtered pages newest first, the sums over the filter (asked
//! for apart from the pages), the CSV export, and voids. Pages are keyset-paginated on (created_at, id), so a
//! page costs the same at row 10 as at row 10 million, and rows written meanwhile never shift a page.

use std::io;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures::{Stream, TryStreamExt};
use loyalty_core::wire::{
    DailyPoints, HistoryFilter, HistoryPage, HistorySummary, HistoryTotals, LedgerEntry,
};
use loyalty_core::{LoyaltyError, Result};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::db::{RpcAnswer, csv_body, db_error};
use crate::members::db::LedgerRow;

/// Where the next (older) page starts: just after the last row of the page before, in (created_at, id) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

impl Cursor {
    /// The cursor as the page's "Older" link carries it. Microseconds are PostgreSQL's own precision, so the
    /// cursor names the row exactly.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_at.timestamp_micros(), self.id)
    }

    pub fn decode(cursor: &str) -> Result<Self> {
        let broken = || LoyaltyError::BrokenCursor;
        let (micros, id) = cursor.split_once('_').ok_or_else(broken)?;
        let micros: i64 = micros.parse().map_err(|_| broken())?;
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(broken)?,
            id: id.parse().map_err(|_| broken())?,
        })
    }
}

/// The program's clock for one history request: its time zone, and the instants at which the filter's first
/// day begins and the day after its last begins. Read first, so the query that follows binds plain instants and
/// is planned for them, as for any range (a function call in the bound leaves the planner guessing).
#[derive(Debug, Clone)]
pub struct Clock {
    pub time_zone: String,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

/// The program's [`Clock`] for `filter`.
pub async fn program_clock(db: &PgPool, program_id: Uuid, filter: &HistoryFilter) -> Result<Clock> {
    let next_day = filter.to.and_then(|to| to.succ_opt());
    let (time_zone, from, until): (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        sqlx::query_as(
            "select p.time_zone, public.program_day_start(p.id, $2), public.program_day_start(p.id, $3)
               from public.programs p where p.id = $1",
        )
        .bind(program_id)
        .bind(filter.from)
        .bind(next_day)
        .fetch_optional(db)
        .await
        .map_err(db_error)?
        .ok_or(LoyaltyError::ProgramNotFound)?;
    Ok(Clock {
        time_zone,
        from,
        until,
    })
}

/// `where ...` for everything the filter matches in the program. Only the conditions that are set are
/// written, so each filter gets the plan (and the index) that suits it.
fn push_filter(
    sql: &mut QueryBuilder<Postgres>,
    program_id: Uuid,
    filter: &HistoryFilter,
    clock: &Clock,
) {
    sql.push(" where t.program_id = ").push_bind(program_id);
    // The program's days, whole and inclusive: from the first moment of `from` to before the day after `to`.
    if let Some(from) = clock.from {
        sql.push(" and t.created_at >= ").push_bind(from);
    }
    if let Some(until) = clock.until {
        sql.push(" and t.created_at < ").push_bind(until);
    }
    if let Some(tx_type) = filter.tx_type {
        sql.push(" and t.type = ").push_bind(tx_type.as_sql());
    }
    if let Some(member) = &filter.member {
        sql.push(
            " and t.member_id = (select m.id from public.passes_master m where m.program_id = ",
        )
        .push_bind(program_id)
        .push(" and m.external_id = ")
        .push_bind(member.as_str())
        .push(")");
    }
    if let Some(staff) = &filter.staff {
        sql.push(" and t.staff_id = (select s.id from public.staff s where s.program_id = ")
            .push_bind(program_id)
            .push(" and s.email = ")
            .push_bind(staff.as_str())
            .push(")");
    }
}

/// The ledger rows the filter matches, shaped as [`LedgerRow`]; the caller adds the order.
fn ledger_query(program_id: Uuid, filter: &HistoryFilter, clock: &Clock) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new("");
    push_ledger_query(&mut sql, program_id, filter, clock);
    sql
}

fn push_ledger_query(
    sql: &mut QueryBuilder<Postgres>,
    program_id: Uuid,
    filter: &HistoryFilter,
    clock: &Clock,
) {
    sql.push(
        "select t.id, m.external_id, t.type as tx_type, t.points, t.balance_after, t.description,
                s.display_name as staff_name, t.created_at, t.created_at at time zone ",
    )
    .push_bind(clock.time_zone.clone())
    .push(
        " as local_at, t.voids_id as voids,
                (select v.id from public.transactions v
                  where v.program_id = t.program_id and v.voids_id = t.id) as voided_by,
                t.sold_at, t.sold_at at time zone ",
    )
    .push_bind(clock.time_zone.clone())
    .push(
        " as local_sold_at
           from public.transactions t
           join public.passes_master m on m.program_id = t.program_id and m.id = t.member_id
           left join public.staff s on s.program_id = t.program_id and s.id = t.staff_id",
    );
    push_filter(sql, program_id, filter, clock);
}

/// Appends the query for one page: `limit` rows (plus one, to tell whether there is an older page) after
/// `cursor`. Public so its plan can be checked with EXPLAIN.
pub fn push_page_query(
    sql: &mut QueryBuilder<Postgres>,
    program_id: Uuid,
    filter: &HistoryFilter,
    clock: &Clock,
    cursor: Option<Cursor>,
    limit: i64,
) {
    push_ledger_query(sql, program_id, filter, clock);
    if let Some(cursor) = cursor {
        sql.push(" and (t.created_at, t.id) < (")
            .push_bind(cursor.created_at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    sql.push(" order by t.created_at desc, t.id desc limit ")
        .push_bind(limit + 1);
}

#[derive(sqlx::FromRow)]
struct DayRow {
    day: NaiveDate,
    transactions: i64,
    earned: i64,
    redeemed: i64,
    expired: i64,
}

/// One page of the history, newest first. `cursor` is the previous page's `next_cursor`. Rows only: one
/// query that reads an index in order and stops after `limit + 1` rows, so the first page costs the same
/// whether the filter matches ten rows or ten million. The sums are [`history_summary`]'s.
pub async fn history_page(
    db: &PgPool,
    program_id: Uuid,
    filter: &HistoryFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<HistoryPage> {
    let cursor = cursor.map(Cursor::decode).transpose()?;
    let limit = limit.clamp(1, 500);
    let clock = program_clock(db, program_id, filter).await?;
    let mut page = QueryBuilder::new("");
    push_page_query(&mut page, program_id, filter, &clock, cursor, limit);
    let mut rows: Vec<LedgerEntry> = page
        .build_query_as::<LedgerRow>()
        .fetch_all(db)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(LedgerEntry::from)
        .collect();
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|last| {
            Cursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(HistoryPage {
        entries: rows,
        next_cursor,
        time_zone: clock.time_zone,
    })
}

/// The sums over everything the filter matches: per day of the program's, oldest first, and in all. Without a member or a
/// staff filter, the days already summed in `ledger_days` ([`roll_up_ledger_days`]) are read from there and
/// only the newer ones row by row; with one, every matching row is read (an index finds them). It is asked for
/// apart from the page, so the page never waits for it.
pub async fn history_summary(
    db: &PgPool,
    program_id: Uuid,
    filter: &HistoryFilter,
) -> Result<HistorySummary> {
    // Read first, so the row-by-row part is planned for its real start (an index range over the newest
    // days), not for an unknown one.
    let clock = program_clock(db, program_id, filter).await?;
    let summed_until: Option<(NaiveDate, DateTime<Utc>)> =
        if filter.member.is_none() && filter.staff.is_none() {
            sqlx::query_as(
                "select x.next_day, public.program_day_start(x.program_id, x.next_day)
               from public.ledger_days_through x
              where x.program_id = $1 and x.next_day > '-infinity'",
            )
            .bind(program_id)
            .fetch_optional(db)
            .await
            .map_err(db_error)?
        } else {
            None
        };
    let mut sums = QueryBuilder::new(
        "select day, sum(transactions)::bigint as transactions, sum(earned)::bigint as earned,
                sum(redeemed)::bigint as redeemed, sum(expired)::bigint as expired
           from (",
    );
    if let Some((until, _)) = summed_until {
        sums.push(
            "select d.day, d.tx_count as transactions,
                    case when d.type = 'EARN' then d.points else 0 end as earned,
                    case when d.type = 'REDEEM' then d.points else 0 end as redeemed,
                    case when d.type = 'EXPIRE' then d.points else 0 end as expired
               from public.ledger_days d
              where d.program_id = ",
        )
        .push_bind(program_id)
        .push(" and d.day < ")
        .push_bind(until);
        if let Some(from) = filter.from {
            sums.push(" and d.day >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            sums.push(" and d.day <= ").push_bind(to);
        }
        if let Some(tx_type) = filter.tx_type {
            sums.push(" and d.type = ").push_bind(tx_type.as_sql());
        }
        sums.push(" union all ");
    }
    sums.push("select (t.created_at at time zone ")
        .push_bind(clock.time_zone.clone())
        .push(
            ")::date as day,
                count(*) as transactions,
                coalesce(sum(t.points) filter (where t.type = 'EARN'), 0)::bigint as earned,
                coalesce(sum(t.points) filter (where t.type = 'REDEEM'), 0)::bigint as redeemed,
                coalesce(sum(t.points) filter (where t.type = 'EXPIRE'), 0)::bigint as expired
           from public.transactions t",
        );
    push_filter(&mut sums, program_id, filter, &clock);
    if let Some((_, start)) = summed_until {
        sums.push(" and t.created_at >= ").push_bind(start);
    }
    sums.push(" group by 1) s group by day order by day");
    let days = sums
        .build_query_as::<DayRow>()
        .fetch_all(db)
        .await
        .map_err(db_error)?;

    let totals = days
        .iter()
        .fold(HistoryTotals::default(), |sum, day| HistoryTotals {
            transactions: sum.transactions + day.transactions,
            earned: sum.earned + day.earned,
            redeemed: sum.redeemed + day.redeemed,
            expired: sum.expired + day.expired,
        });
    Ok(HistorySummary {
        totals,
        daily: days
            .into_iter()
            .map(|d| DailyPoints {
                day: d.day,
                earned: d.earned,
                redeemed: d.redeemed,
            })
            .collect(),
    })
}

/// Sums the days of every program that are over into `ledger_days`, for [`history_summary`]. Cheap when
/// there is nothing new: the server calls it at start and every hour.
pub async fn roll_up_ledger_days(db: &PgPool) -> Result<()> {
    let programs: Vec<Uuid> = sqlx::query_scalar("select p.id from public.programs p")
        .fetch_all(db)
        .await
        .map_err(db_error)?;
    // One program at a time: each is its own short transaction.
    for program_id in programs {
        sqlx::query("select public.roll_up_ledger_days($1)")
            .bind(program_id)
            .execute(db)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// One ledger entry of the program, as the history shows it.
pub async fn ledger_entry(db: &PgPool, program_id: Uuid, id: i64) -> Result<LedgerEntry> {
    let all = HistoryFilter::default();
    let clock = program_clock(db, program_id, &all).await?;
    let mut sql = ledger_query(program_id, &all, &clock);
    sql.push(" and t.id = ").push_bind(id);
    sql.build_query_as::<LedgerRow>()
        .fetch_optional(db)
        .await
        .map_err(db_error)?
        .map(LedgerEntry::from)
        .ok_or(LoyaltyError::TransactionNotFound)
}

/// Voids a ledger entry with a compensating entry, under the member's row lock. Returns the new entry.
pub async fn void(
    db: &PgPool,
    program_id: Uuid,
    staff_id: Option<Uuid>,
    transaction_id: i64,
    reason: &str,
) -> Result<LedgerEntry> {
    let answer: sqlx::types::Json<RpcAnswer> =
        sqlx::query_scalar("select public.void_transaction($1, $2, $3, $4)")
            .bind(program_id)
            .bind(transaction_id)
            .bind(reason)
            .bind(staff_id)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
    let void_id = answer
        .0
        .into_result()?
        .transaction_id
        .ok_or(LoyaltyError::Internal)?;
    ledger_entry(db, program_id, void_id).await
}

/// The CSV export's columns. `sold_at` is the time of the sale where the till gave one (an earn sent late).
pub const CSV_HEADER: [&str; 10] = [
    "id",
    "created_at",
    "member",
    "type",
    "points",
    "balance_after",
    "staff",
    "description",
    "voids",
    "sold_at",
];

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) is written with a leading `'`:
/// notes are typed by clerks, and the export is opened by managers.
pub fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// One ledger entry as a CSV record, in [`CSV_HEADER`]'s order.
pub fn csv_record(entry: &LedgerEntry) -> [String; 10] {
    [
        entry.id.to_string(),
        entry
            .created_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        spreadsheet_safe(&entry.external_id),
        entry.tx_type.as_sql().to_owned(),
        entry.points.to_string(),
        entry.balance_after.to_string(),
        spreadsheet_safe(entry.staff_name.as_deref().unwrap_or("")),
        spreadsheet_safe(entry.description.as_deref().unwrap_or("")),
        entry.voids.map(|id| id.to_string()).unwrap_or_default(),
        entry
            .sold_at
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Micros, true))
            .unwrap_or_default(),
    ]
}

/// Everything the filter matches as CSV, newest first, streamed from one query as the rows arrive: memory
/// stays at a chunk or two however large the export. A database failure part-way ends the stream with an
/// error, so the download fails rather than looking complete.
pub fn history_csv(
    db: PgPool,
    program_id: Uuid,
    filter: HistoryFilter,
) -> impl Stream<Item = io::Result<Vec<u8>>> + Send + 'static {
    csv_body("the history CSV", move |mut out| async move {
        out.write(CSV_HEADER).await?;
        let clock = program_clock(&db, program_id, &filter).await?;
        let mut sql = ledger_query(program_id, &filter, &clock);
        sql.push(" order by t.created_at desc, t.id desc");
        let mut rows = sql.build_query_as::<LedgerRow>().fetch(&db);
        while let Some(row) = rows.try_next().await.map_err(db_error)? {
            if !out.write(csv_record(&LedgerEntry::from(row))).await? {
                return Ok(());
            }
        }
        out.finish().await
    })
}
