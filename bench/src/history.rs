//! The manager's history over a large ledger: millions of rows spread over a year and many members, then the
//! first page, a filtered page and a filtered CSV export timed over HTTP as a manager.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::PgPool;

use crate::Cli;
use crate::http::Session;
use crate::report::histogram;
use crate::seed::{Setup, insert_members, member_external_id};
use crate::server::{MANAGER_EMAIL, Server};

/// Rows per insert statement: progress shows, and no single statement holds minutes of work.
const CHUNK: u64 = 1_000_000;
/// Warm requests timed per page after the first (cold) one.
const PAGE_REPEATS: usize = 20;
const CSV_REPEATS: usize = 3;

pub async fn run(cli: &Cli, server: &Server, setup: Option<&Setup>) -> anyhow::Result<()> {
    println!();
    if let Some(setup) = setup {
        seed(cli, server, setup).await?;
    }
    time(cli, server).await
}

async fn seed(cli: &Cli, server: &Server, setup: &Setup) -> anyhow::Result<()> {
    println!(
        "History: seeding {} ledger rows over 365 days and {} members...",
        cli.history_rows, cli.history_members
    );
    let started = Instant::now();
    if cli.history_members > cli.members {
        insert_members(
            &server.owner,
            setup.program_id,
            cli.members + 1,
            cli.history_members,
        )
        .await?;
    }
    seed_ledger(&server.owner, setup, cli.history_rows).await?;
    println!(
        "  seeded and vacuumed in {:.0} s; the ledger's table and indexes take {}",
        started.elapsed().as_secs_f64(),
        ledger_size(&server.owner).await?
    );
    Ok(())
}

/// The timings, over the ledger as it is.
async fn time(cli: &Cli, server: &Server) -> anyhow::Result<()> {
    let rows: i64 = sqlx::query_scalar("select count(*) from public.transactions")
        .fetch_one(&server.owner)
        .await?;
    println!("History over {rows} ledger rows, as the bench manager:");
    let manager = Session::sign_in(&server.url, MANAGER_EMAIL).await?;
    let today = chrono_free_today(&server.owner).await?;
    let member = member_external_id(cli.history_members / 2);
    let page_url = format!("{}/api/history", server.url);
    let summary_url = format!("{}/api/history_summary", server.url);
    println!(
        "| history request                                          | rows | first ms | p50 ms | max ms |"
    );
    println!(
        "|----------------------------------------------------------|-----:|---------:|-------:|-------:|"
    );
    let from = shift_days(&server.owner, &today, -180).await?;
    let filtered = [
        ("tx_type", "EARN"),
        ("member", member.as_str()),
        ("from", from.as_str()),
        ("to", today.as_str()),
    ];
    // The unfiltered summary both ways in this run: row by row, then from the summed days.
    let program_id: uuid::Uuid =
        sqlx::query_scalar("select id from public.programs where name = $1")
            .bind(crate::server::PROGRAM)
            .fetch_one(&server.owner)
            .await?;
    sqlx::query("delete from public.ledger_days_through where program_id = $1")
        .bind(program_id)
        .execute(&server.owner)
        .await?;
    sqlx::query("delete from public.ledger_days where program_id = $1")
        .bind(program_id)
        .execute(&server.owner)
        .await?;
    println!(
        "{}",
        time_page(&manager, &summary_url, &[])
            .await?
            .line("summary (sums, per-day chart), no filter, row by row")
    );
    let started = Instant::now();
    sqlx::query("select public.roll_up_ledger_days($1)")
        .bind(program_id)
        .execute(&server.owner)
        .await?;
    let rolled_up = started.elapsed();
    for (what, url, fields) in [
        ("first page, no filter", &page_url, &[][..]),
        (
            "filtered page: EARN, one member, 180 days",
            &page_url,
            &filtered[..],
        ),
        (
            "summary (sums, per-day chart), no filter, summed days",
            &summary_url,
            &[][..],
        ),
        (
            "summary: EARN, one member, 180 days",
            &summary_url,
            &filtered[..],
        ),
    ] {
        println!("{}", time_page(&manager, url, fields).await?.line(what));
    }

    println!(
        "Summing the days before yesterday into ledger_days (roll_up_ledger_days) took {:.1} s.",
        rolled_up.as_secs_f64()
    );

    let month_ago = shift_days(&server.owner, &today, -30).await?;
    let csv_url = format!(
        "{}/api/history.csv?type=EARN&from={month_ago}&to={today}",
        server.url
    );
    println!();
    println!("| CSV export: EARN, last 30 days | rows | MB | seconds | MB/s | rows/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for _ in 0..CSV_REPEATS {
        let started = Instant::now();
        let mut response = manager.get(&csv_url).await?;
        if !response.status().is_success() {
            bail!("CSV export: {}", response.status());
        }
        let (mut bytes, mut lines) = (0u64, 0u64);
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "| run | {} | {:.1} | {seconds:.2} | {:.1} | {:.0} |",
            lines.saturating_sub(1),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / seconds,
            lines.saturating_sub(1) as f64 / seconds
        );
    }
    Ok(())
}

/// Bulk rows straight into the ledger as its owner. Foreign-key triggers are skipped for the load
/// (session_replication_role = replica, as pg_restore does): every member and staff id comes from their tables.
/// Rows go in time order, as they would arrive, so the time-ordered indexes grow at their ends.
async fn seed_ledger(owner: &PgPool, setup: &Setup, rows: u64) -> anyhow::Result<()> {
    let mut conn = owner.acquire().await?;
    sqlx::query("set session_replication_role = replica")
        .execute(&mut *conn)
        .await?;
    let step_micros = (365 * 24 * 3600 * 1_000_000u64 / rows.max(1)) as i64;
    let mut done = 0;
    while done < rows {
        let chunk = CHUNK.min(rows - done);
        let started = Instant::now();
        sqlx::query(
            "insert into public.transactions
                 (program_id, member_id, points, type, description, staff_id, balance_after, created_at)
             select $1, m.ids[1 + floor(random() * m.n)::int],
                    1 + floor(random() * 500)::int,
                    case when random() < 0.7 then 'EARN' else 'REDEEM' end,
                    case when g % 10 = 0 then 'Bench row ' || g end,
                    $2, floor(random() * 100000)::int,
                    now() - interval '365 days' + make_interval(secs => g * $5::bigint / 1e6)
               from (select array_agg(id) as ids, count(*)::int as n
                       from public.passes_master where program_id = $1) m,
                    generate_series($3::bigint, $4::bigint) g",
        )
        .bind(setup.program_id)
        .bind(setup.clerk_id)
        .bind(done as i64 + 1)
        .bind((done + chunk) as i64)
        .bind(step_micros)
        .execute(&mut *conn)
        .await
        .context("seeding the ledger")?;
        done += chunk;
        println!(
            "  {done} rows ({:.1} s for the last {chunk})",
            started.elapsed().as_secs_f64()
        );
    }
    sqlx::query("set session_replication_role = origin")
        .execute(&mut *conn)
        .await?;
    // The visibility map lets the history's sums read the covering indexes alone, as on a long-lived ledger.
    sqlx::raw_sql("vacuum (analyze) public.transactions, public.passes_master")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn ledger_size(owner: &PgPool) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("select pg_size_pretty(pg_total_relation_size('public.transactions'))")
            .fetch_one(owner)
            .await?,
    )
}

async fn chrono_free_today(owner: &PgPool) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("select to_char(now() at time zone 'UTC', 'YYYY-MM-DD')")
            .fetch_one(owner)
            .await?,
    )
}

async fn shift_days(owner: &PgPool, day: &str, days: i32) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("select to_char($1::date + $2, 'YYYY-MM-DD')")
            .bind(day)
            .bind(days)
            .fetch_one(owner)
            .await?,
    )
}

struct PageTimes {
    matched: i64,
    first: Duration,
    hist: hdrhistogram::Histogram<u64>,
}

impl PageTimes {
    fn line(&self, what: &str) -> String {
        format!(
            "| {what:<56} | {:>4} | {:>8.1} | {:>6.1} | {:>6.1} |",
            self.matched,
            self.first.as_secs_f64() * 1000.0,
            self.hist.value_at_quantile(0.5) as f64 / 1000.0,
            self.hist.max() as f64 / 1000.0
        )
    }
}

/// The first request (cold caches) apart, then the warm ones.
async fn time_page(
    manager: &Session,
    url: &str,
    fields: &[(&str, &str)],
) -> anyhow::Result<PageTimes> {
    let mut hist = histogram();
    let mut first = Duration::ZERO;
    let mut matched = 0;
    for i in 0..=PAGE_REPEATS {
        let started = Instant::now();
        let response = manager.post(url, fields).await?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = started.elapsed();
        if !status.is_success() {
            bail!("history: {status} {}", String::from_utf8_lossy(&body));
        }
        if i == 0 {
            first = took;
            // A page's rows, or the number of rows a summary sums.
            let answer: serde_json::Value = serde_json::from_slice(&body)?;
            matched = answer["entries"]
                .as_array()
                .map(|rows| rows.len() as i64)
                .or_else(|| answer["totals"]["transactions"].as_i64())
                .unwrap_or(-1);
        } else {
            let _ = hist.record(took.as_micros().max(1) as u64);
        }
    }
    Ok(PageTimes {
        matched,
        first,
        hist,
    })
}
