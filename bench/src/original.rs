//! The design's original functions, loaded as they are (the file the hardening tests load) into a database of
//! their own on the same cluster, to measure what the hardening costs: the same earn, redeem and claim shapes
//! through pgbench, in each round beside the other runs.
//!
//! The original's tables have no index beyond what the file makes, so the indexes its look-ups need (a member by
//! program and external id, a postcard by program and code) are added, or every call would read the whole table.
//! What the comparison leaves out, because the original does not do it and so does not pay for it: idempotency
//! keys, the staff member's check (a manager's, for our earn and redeem adjustments, with their reason), the
//! amount and type checks, the ledger's balance after each row and its append-only guard, the pass's version and
//! its wallet changes, the day's roll-up, and the check that a burned postcard's pass exists.

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::seed::{BALANCE, Case, HOT_BALANCE, PostcardSlice, Setup, member_external_id};

const DATABASE: &str = "bench_original";
/// How many times our postcards per run the original's claim runs get.
const ORIGINAL_SPEED_UP: i64 = 5;
const ORIGINAL_SQL: &str = include_str!("../../server/tests/fixtures/seed_017.sql");

pub struct Original {
    /// The database's superuser URL: pgbench runs as its owner, who owns the functions.
    pub url: String,
    pool: PgPool,
    postcards_per_run: i64,
}

/// The cases the original can run: earn and redeem (one member or many) and a postcard's claim.
pub fn covers(case: Case) -> bool {
    matches!(
        case,
        Case::EarnMany | Case::EarnHot | Case::RedeemMany | Case::RedeemHot | Case::Claim
    )
}

impl Original {
    /// Makes the database afresh beside `owner`'s, loads the original, and seeds the same program id, members,
    /// balances and enough postcards for `runs` claim runs.
    pub async fn load(
        owner: &PgPool,
        superuser_url: &str,
        setup: &Setup,
        members: u32,
        runs: usize,
    ) -> anyhow::Result<Self> {
        // One statement each: a database is not made inside a transaction block.
        for statement in [
            format!("drop database if exists {DATABASE} with (force)"),
            format!("create database {DATABASE}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(owner)
                .await
                .context("making the original's database")?;
        }
        let url = match superuser_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{DATABASE}"),
            None => anyhow::bail!("no database in {superuser_url}"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .context("connecting to the original's database")?;
        sqlx::raw_sql(ORIGINAL_SQL)
            .execute(&pool)
            .await
            .context("loading the original")?;
        sqlx::raw_sql(
            "create unique index on passes_master (program_id, external_id);
             create unique index on claim_codes (program_id, code);
             create schema bench;
             create table bench.postcards (n bigint primary key, code text not null);",
        )
        .execute(&pool)
        .await?;
        sqlx::query("insert into programs (id, name) values ($1, 'Bench')")
            .bind(setup.program_id)
            .execute(&pool)
            .await?;
        let ids: Vec<String> = (0..=members).map(member_external_id).collect();
        sqlx::query(
            "insert into passes_master (program_id, external_id, points)
             select $1, external_id, case when external_id = $3 then $4 else $5 end
               from unnest($2::text[]) as external_id",
        )
        .bind(setup.program_id)
        .bind(&ids)
        .bind(member_external_id(0))
        .bind(HOT_BALANCE)
        .bind(BALANCE)
        .execute(&pool)
        .await?;
        // The original claims several times faster than ours: a run past its slice would scan codes that are
        // not there, refusals cheaper than claims.
        let postcards_per_run = setup.postcards_per_run() * ORIGINAL_SPEED_UP;
        sqlx::query(
            "insert into bench.postcards (n, code) select n, 'ORIGINAL-' || n from generate_series(1, $1) n",
        )
        .bind(postcards_per_run * runs as i64)
        .execute(&pool)
        .await?;
        sqlx::query(
            "insert into claim_codes (program_id, code) select $1, code from bench.postcards",
        )
        .bind(setup.program_id)
        .execute(&pool)
        .await?;
        sqlx::raw_sql("analyze").execute(&pool).await?;
        Ok(Self {
            url,
            pool,
            postcards_per_run,
        })
    }

    /// The postcards of the original's claim run `run`.
    pub fn postcard_slice(&self, run: usize) -> PostcardSlice {
        PostcardSlice {
            base: run as i64 * self.postcards_per_run,
            len: self.postcards_per_run,
        }
    }

    /// Ledger rows and burned postcards so far.
    pub async fn mark(&self) -> anyhow::Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "select (select count(*) from transactions),
                    (select count(*) from claim_codes where claimed_at is not null)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every transaction pgbench counted must have changed the original's tables, as for the other paths.
    pub async fn check_applied(
        &self,
        case: Case,
        before: (i64, i64),
        done: u64,
    ) -> anyhow::Result<()> {
        let after = self.mark().await?;
        let applied = match case {
            Case::Claim => after.1 - before.1,
            _ => after.0 - before.0,
        };
        if applied != done as i64 {
            println!(
                "  warning: the original's {} counted {done} transactions but {applied} changed its tables",
                case.name()
            );
        }
        Ok(())
    }
}
