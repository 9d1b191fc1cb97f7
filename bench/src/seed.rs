//! The bench program: a clerk, members with balances, one hot member, a reward, and unclaimed postcards for the
//! claim runs. Written as the database owner.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::server::{MANAGER_EMAIL, PROGRAM};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    EarnMany,
    EarnHot,
    RedeemMany,
    RedeemHot,
    Claim,
    SaleMany,
    RewardMany,
}

impl Case {
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::EarnMany,
            Self::EarnHot,
            Self::RedeemMany,
            Self::RedeemHot,
            Self::Claim,
            Self::SaleMany,
            Self::RewardMany,
        ]
        .into_iter()
        .find(|case| case.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::EarnMany => "earn-many",
            Self::EarnHot => "earn-hot",
            Self::RedeemMany => "redeem-many",
            Self::RedeemHot => "redeem-hot",
            Self::Claim => "claim",
            Self::SaleMany => "sale-many",
            Self::RewardMany => "reward-many",
        }
    }

    /// The API endpoint and the pgbench script.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::EarnMany | Self::EarnHot => "earn",
            Self::RedeemMany | Self::RedeemHot => "redeem",
            Self::Claim => "claim",
            Self::SaleMany => "earn_sale",
            Self::RewardMany => "redeem_reward",
        }
    }

    /// The points one request moves, where a run checks them: a sale of SALE_AMOUNT at the program's default
    /// rate (and no promotion), or the reward's cost.
    pub fn points(self) -> Option<i64> {
        match self {
            Self::SaleMany => Some(SALE_POINTS),
            Self::RewardMany => Some(REWARD_COST.into()),
            _ => None,
        }
    }

    /// The members a run draws from: the hot member alone, or 1..=members.
    pub fn member_range(self, members: u32) -> (u32, u32) {
        match self {
            Self::EarnHot | Self::RedeemHot => (0, 0),
            _ => (1, members),
        }
    }
}

/// What every sale of the sale runs comes to, as a till types it; at the default rate of 1 point per 1.00 it
/// earns SALE_POINTS.
pub const SALE_AMOUNT: &str = "12.50";
const SALE_POINTS: i64 = 12;
/// The bench reward's cost: no stock to run out and no limit per day, so every redeem of it goes through.
const REWARD_COST: i32 = 10;

/// Member `n`'s pass id. Digits become letters (the pass alphabet has no 0 or 1); pgbench's scripts compute the
/// same with `translate`. Member 0 is the hot one.
pub fn member_external_id(n: u32) -> String {
    let digits = format!("{n:07}");
    let letters: String = digits
        .bytes()
        .map(|d| b"ABCDEFGHJK"[(d - b'0') as usize] as char)
        .collect();
    format!("MBR-{letters}")
}

/// Postcards one claim run may use: bench.postcards rows base+1 ..= base+len.
#[derive(Debug, Clone, Copy)]
pub struct PostcardSlice {
    pub base: i64,
    pub len: i64,
}

pub struct Setup {
    /// The bench program ("Bench"), which the history timings read.
    pub program_id: Uuid,
    /// Every program the load is spread over, the bench program first.
    pub program_ids: Vec<Uuid>,
    /// Clerk 0, named as the staff member on the seeded ledger rows.
    pub clerk_id: Uuid,
    /// Each program's reward, in the order of `program_ids`.
    pub reward_ids: Vec<i64>,
    postcards_per_run: i64,
}

impl Setup {
    pub fn postcards_per_run(&self) -> i64 {
        self.postcards_per_run
    }

    pub fn postcard_slice(&self, run: usize) -> PostcardSlice {
        PostcardSlice {
            base: run as i64 * self.postcards_per_run,
            len: self.postcards_per_run,
        }
    }
}

/// Claims per second no run is expected to reach: each claim run gets this many postcards per second of run.
const POSTCARDS_PER_SECOND: i64 = 4000;
/// Members' starting balance: redeem runs never run a balance dry.
pub const BALANCE: i32 = 1_000_000;
pub const HOT_BALANCE: i32 = 1_000_000_000;

pub async fn seed(
    owner: &PgPool,
    members: u32,
    clerks: usize,
    programs: usize,
    claim_runs: usize,
    duration: Duration,
) -> anyhow::Result<Setup> {
    let started = Instant::now();
    let program_id: Uuid = sqlx::query_scalar("select id from public.programs where name = $1")
        .bind(PROGRAM)
        .fetch_one(owner)
        .await
        .context("the bench program")?;
    let mut program_ids = vec![program_id];
    for k in 2..=programs {
        program_ids.push(
            sqlx::query_scalar("insert into public.programs (name) values ($1) returning id")
                .bind(format!("{PROGRAM} {k}"))
                .fetch_one(owner)
                .await?,
        );
    }
    // One staff member per client, as at a store's tills, clerk n of program n mod programs. They are managers:
    // the earn and redeem cases are adjustments, points typed by hand, which only a manager may make; sales,
    // rewards and claims are the same for any staff member. They sign in with the manager's password: its hash
    // is copied, so no hashing code is needed here. bench.clerks numbers them like
    // pgbench's client_id. Each step is a statement of its own, as Citus wants of writes to distributed tables.
    sqlx::raw_sql(
        "create schema bench;
         create table bench.clerks (n integer primary key, id uuid not null);
         create table bench.postcards (n bigint primary key, code text not null);
         grant usage on schema bench to loyalty_app;
         grant select on bench.clerks, bench.postcards to loyalty_app;",
    )
    .execute(owner)
    .await?;
    let password_hash: String = sqlx::query_scalar(
        "select password_hash from public.staff where program_id = $1 and email = $2",
    )
    .bind(program_id)
    .bind(MANAGER_EMAIL)
    .fetch_one(owner)
    .await
    .context("the bench manager")?;
    sqlx::query(
        "insert into public.staff (program_id, email, display_name, role, password_hash)
         select ($1::uuid[])[n % cardinality($1::uuid[]) + 1], 'clerk-' || n || '@bench.test', 'Bench clerk ' || n,
                'manager', $2
           from generate_series(0, $3 - 1) n",
    )
    .bind(&program_ids)
    .bind(&password_hash)
    .bind(clerks as i32)
    .execute(owner)
    .await
    .context("the bench clerks")?;
    let made: Vec<(String, Uuid)> = sqlx::query_as(
        "select email, id from public.staff where program_id = any($1) and email like 'clerk-%@bench.test'",
    )
    .bind(&program_ids)
    .fetch_all(owner)
    .await?;
    sqlx::query(
        "insert into bench.clerks (n, id)
         select split_part(split_part(email, '@', 1), '-', 2)::int, id from unnest($1::text[], $2::uuid[]) c (email, id)",
    )
    .bind(made.iter().map(|(email, _)| email.clone()).collect::<Vec<_>>())
    .bind(made.iter().map(|(_, id)| *id).collect::<Vec<_>>())
    .execute(owner)
    .await?;
    let clerk_id: Uuid = sqlx::query_scalar("select id from bench.clerks where n = 0")
        .fetch_one(owner)
        .await?;
    for &program in &program_ids {
        insert_members(owner, program, 0, members).await?;
    }
    // The programs keep their default earning rate and get no promotion: both paths of the sale runs earn
    // alike. Each gets one reward, with no stock and no limit per day.
    let mut reward_ids = Vec::with_capacity(program_ids.len());
    for &program in &program_ids {
        reward_ids.push(
            sqlx::query_scalar(
                "insert into public.rewards (program_id, name, points_cost) values ($1, 'Bench reward', $2)
                 returning id",
            )
            .bind(program)
            .bind(REWARD_COST)
            .fetch_one(owner)
            .await
            .context("the bench reward")?,
        );
    }

    let postcards_per_run = POSTCARDS_PER_SECOND * duration.as_secs().max(1) as i64;
    let total = postcards_per_run * claim_runs as i64;
    // The codes the claim runs scan, numbered so each run (and each pgbench client) takes its own slice; row n
    // is a postcard of program (n - 1) mod programs.
    let count = programs as i64;
    for (k, &program) in program_ids.iter().enumerate() {
        let codes: Vec<String> = sqlx::query_scalar(
            "insert into public.claim_codes (program_id, code)
             select $1, public.new_claim_code() from generate_series(1, $2)
             returning code",
        )
        .bind(program)
        .bind((total + count - 1) / count)
        .fetch_all(owner)
        .await?;
        sqlx::query(
            "insert into bench.postcards (n, code)
             select (j - 1) * $2 + $3 + 1, code from unnest($1::text[]) with ordinality as c (code, j)",
        )
        .bind(&codes)
        .bind(count)
        .bind(k as i64)
        .execute(owner)
        .await?;
    }
    sqlx::raw_sql("analyze").execute(owner).await?;
    println!(
        "Seeded {programs} program(s) from {PROGRAM:?}: {clerks} clerks, {members} members each with {BALANCE} points, one hot member each, a reward of {REWARD_COST} points each, {total} postcards ({:.1} s).",
        started.elapsed().as_secs_f64()
    );
    Ok(Setup {
        program_id,
        program_ids,
        clerk_id,
        reward_ids,
        postcards_per_run,
    })
}

/// Members first..=last, member 0 (the hot one) with a larger balance.
pub async fn insert_members(
    owner: &PgPool,
    program_id: Uuid,
    first: u32,
    last: u32,
) -> anyhow::Result<()> {
    let ids: Vec<String> = (first..=last).map(member_external_id).collect();
    for chunk in ids.chunks(50_000) {
        sqlx::query(
            "insert into public.passes_master (program_id, external_id, points)
             select $1, external_id, case when external_id = $3 then $4 else $5 end
               from unnest($2::text[]) as external_id",
        )
        .bind(program_id)
        .bind(chunk)
        .bind(member_external_id(0))
        .bind(HOT_BALANCE)
        .bind(BALANCE)
        .execute(owner)
        .await?;
    }
    Ok(())
}

/// Where the ledger, its points, the rows beside it and the burned postcards of the bench programs stood before
/// a run: counted, since on Citus each node numbers its own ledger rows.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    ledger: i64,
    points: i64,
    details: i64,
    claimed: i64,
}

pub async fn ledger_mark(owner: &PgPool, setup: &Setup) -> anyhow::Result<Mark> {
    let (ledger, points, details, claimed): (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from public.transactions where program_id = any($1)),
                (select coalesce(sum(points), 0)::bigint from public.transactions where program_id = any($1)),
                (select count(*) from public.ledger_details where program_id = any($1)),
                (select count(*) from public.claim_codes where program_id = any($1) and claimed_at is not null)",
    )
    .bind(&setup.program_ids)
    .fetch_one(owner)
    .await?;
    Ok(Mark {
        ledger,
        points,
        details,
        claimed,
    })
}

/// Every request counted as done must have changed the database: a refused call (no funds, a postcard already
/// burned or missing) would be cheaper and flatter the numbers.
pub async fn check_applied(
    owner: &PgPool,
    setup: &Setup,
    case: Case,
    before: Mark,
    done: u64,
) -> anyhow::Result<()> {
    let after = ledger_mark(owner, setup).await?;
    let applied = match case {
        Case::Claim => after.claimed - before.claimed,
        _ => after.ledger - before.ledger,
    };
    if applied != done as i64 {
        println!(
            "  warning: {} counted {done} requests but {applied} changed the database",
            case.name()
        );
    }
    // A sale or a reward also writes a row beside the ledger's, and moves a known number of points.
    if let Some(points) = case.points() {
        let (details, moved) = (after.details - before.details, after.points - before.points);
        if details != done as i64 || moved != points * done as i64 {
            println!(
                "  warning: {} counted {done} requests of {points} points but wrote {details} detail rows and moved {moved} points",
                case.name()
            );
        }
    }
    Ok(())
}
