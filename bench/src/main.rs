//! The load benchmark: earn, redeem, claim, a sale and a reward through the server's HTTP API, signed in as
//! clerks, against the same database functions called directly by pgbench, in one run on one database; then
//! the manager's history over a ledger of millions of rows. It starts its own server (and so its own embedded PostgreSQL) under
//! target/bench, and stops both when it ends.

mod cpu;
mod history;
mod http;
mod original;
mod pgbench;
mod report;
mod seed;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::http::Load;
use crate::pgbench::Pgbench;
use crate::seed::Case;

#[derive(Debug, Parser)]
struct Cli {
    /// How long each measured run lasts.
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,
    /// Runs of each path per case, alternating server and direct, so a slower or busier stretch of the
    /// machine weighs on both paths alike; the table sums them and shows the spread of the rounds' ratios.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients, one run per count.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    clients: Vec<usize>,
    /// Members the "many members" cases spread over.
    #[arg(long, default_value_t = 1000)]
    members: u32,
    /// Which cases to run (earn-many, earn-hot, redeem-many, redeem-hot, claim, sale-many, reward-many).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "earn-many,earn-hot,redeem-many,redeem-hot,claim,sale-many,reward-many"
    )]
    cases: Vec<String>,
    /// Ledger rows seeded for the history timings; 0 skips them (seeding 10 million takes minutes).
    #[arg(long, default_value_t = 10_000_000)]
    history_rows: u64,
    /// Members the seeded ledger is spread over.
    #[arg(long, default_value_t = 100_000)]
    history_members: u32,
    /// Only time the history, over the ledger an earlier run left in the work folder (kept, not emptied).
    #[arg(long)]
    history_only: bool,
    /// Database connections the server keeps in each of its two pools (its --db-pool): 12, so that at 64
    /// clients both pools beside pgbench's 64 connections stay under PostgreSQL's default of 100.
    #[arg(long, default_value_t = 12)]
    db_pool: u32,
    /// The server binary under test.
    #[arg(long, default_value = "target/release/server")]
    server_bin: PathBuf,
    /// Where the benchmark keeps its cluster and logs; emptied at the start.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// The folder holding pgbench's scripts.
    #[arg(long, default_value = "bench/pgbench")]
    scripts: PathBuf,
    #[arg(long, default_value_t = 3200)]
    port: u16,
    #[arg(long, default_value_t = 54500)]
    pg_port: u16,
    /// Serve from this database (a superuser URL, a Citus coordinator's, say) instead of an embedded cluster:
    /// migrated, distributed and holding no bench data yet (scripts/citus.sh up makes one). There are no
    /// direct pgbench runs then, and no history timings.
    #[arg(long)]
    database_url: Option<String>,
    /// The data folders of every cluster that database's requests reach (each Citus node), for the processor
    /// time per request.
    #[arg(long, value_delimiter = ',')]
    pgdata: Vec<PathBuf>,
    /// Programs the clients are spread over: client i is a clerk of program i mod N.
    #[arg(long, default_value_t = 1)]
    programs: usize,
}

impl Cli {
    /// pgbench's scripts and the history timings serve one program on the embedded cluster.
    fn direct_runs(&self) -> bool {
        self.database_url.is_none() && self.programs == 1
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cases: Vec<Case> = cli
        .cases
        .iter()
        .map(|name| Case::parse(name).with_context(|| format!("unknown case {name:?}")))
        .collect::<anyhow::Result<_>>()?;
    let pgbench = Pgbench::find(&cli.scripts, &cli.work_dir)?;
    let duration = Duration::from_secs(cli.duration_secs);

    let server = server::Server::start(&cli).await?;
    let result = run(&cli, &server, &pgbench, &cases, duration).await;
    server.stop().await;
    result
}

async fn run(
    cli: &Cli,
    server: &server::Server,
    pgbench: &Pgbench,
    cases: &[Case],
    duration: Duration,
) -> anyhow::Result<()> {
    println!("{}", report::describe(&server.owner).await?);
    if cli.history_only {
        history::run(cli, server, None).await?;
        println!("{}", report::load_line());
        return Ok(());
    }
    let max_clients = cli.clients.iter().copied().max().unwrap_or(1);
    let claim_runs = 2 * cli.clients.len() * cli.rounds.max(1);
    let setup = seed::seed(
        &server.owner,
        cli.members,
        max_clients,
        cli.programs.max(1),
        claim_runs,
        duration,
    )
    .await?;
    // The design's original functions, for the cost of the hardening, where a case can run through them.
    let original = if cli.direct_runs() && cases.iter().any(|c| original::covers(*c)) {
        let runs = cli.clients.len() * cli.rounds.max(1);
        let loaded = original::Original::load(
            &server.owner,
            &server.superuser_url(),
            &setup,
            cli.members,
            runs,
        )
        .await?;
        println!(
            "Loaded the design's original functions into a database of their own on the same cluster, with the same program, members and balances, and the indexes their look-ups need."
        );
        Some(loaded)
    } else {
        None
    };
    let mut original_claim_run = 0;
    let sessions = http::sign_in_clerks(&server.url, max_clients).await?;
    let db_url = server.app_url();

    let meter = server.meter();
    let mut rows = Vec::new();
    let mut claim_run = 0;
    let mut next_postcards = |case: Case| {
        (case == Case::Claim).then(|| {
            let slice = setup.postcard_slice(claim_run);
            claim_run += 1;
            slice
        })
    };
    for case in cases {
        for &clients in &cli.clients {
            let load = Load {
                case: *case,
                clients,
                duration,
                members: cli.members,
            };
            let mut row = report::Row {
                case: case.name(),
                clients,
                server: report::Measured::new(),
                direct: report::Measured::new(),
                round_ratios: Vec::new(),
                original: None,
                original_ratios: Vec::new(),
            };
            for _ in 0..cli.rounds.max(1) {
                let postcards = next_postcards(*case);
                let before = seed::ledger_mark(&server.owner, &setup).await?;
                let cpu = meter.sample();
                let mut via_server = http::run(
                    &server.url,
                    &sessions[..clients],
                    &load,
                    postcards.as_ref(),
                    &setup.reward_ids,
                    &server.owner,
                )
                .await?;
                via_server.cpu = meter.sample().per_request(&cpu, via_server.ok);
                seed::check_applied(&server.owner, &setup, *case, before, via_server.ok).await?;
                if !cli.direct_runs() {
                    row.server.absorb(via_server);
                    continue;
                }

                let postcards = next_postcards(*case);
                let before = seed::ledger_mark(&server.owner, &setup).await?;
                let cpu = meter.sample();
                let mut direct = pgbench
                    .run(&db_url, &setup, &load, postcards.as_ref())
                    .await?;
                // pgbench's backends have just exited: their time counts once the postmaster has reaped them.
                tokio::time::sleep(Duration::from_millis(500)).await;
                direct.cpu = meter.sample().per_request(&cpu, direct.ok);
                seed::check_applied(&server.owner, &setup, *case, before, direct.ok).await?;
                row.round_ratios
                    .push(via_server.per_second() / direct.per_second().max(1e-9));
                if let Some(original) = original.as_ref().filter(|_| original::covers(*case)) {
                    let postcards = (*case == Case::Claim).then(|| {
                        original_claim_run += 1;
                        original.postcard_slice(original_claim_run - 1)
                    });
                    let before = original.mark().await?;
                    let cpu = meter.sample();
                    let mut theirs = pgbench
                        .run_original(original, &setup, &load, postcards.as_ref())
                        .await?;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    theirs.cpu = meter.sample().per_request(&cpu, theirs.ok);
                    original.check_applied(*case, before, theirs.ok).await?;
                    row.original_ratios
                        .push(direct.per_second() / theirs.per_second().max(1e-9));
                    row.original
                        .get_or_insert_with(report::Measured::new)
                        .absorb(theirs);
                }
                row.server.absorb(via_server);
                row.direct.absorb(direct);
            }
            println!("{}", row.line());
            rows.push(row);
        }
    }
    println!();
    println!(
        "HTTP: {} rounds of {} s per case, alternating with the direct runs, keep-alive, one signed-in clerk session per client (cookie + CSRF field); server pool {} connections.",
        cli.rounds.max(1),
        duration.as_secs(),
        cli.db_pool
    );
    println!(
        "Direct: pgbench -M prepared -j 2 -T {} per round as the server's database role; p50/p99 from its per-transaction log (-l).",
        duration.as_secs()
    );
    println!("{}", report::table(&rows));
    println!("Processor time per request (microseconds), from /proc: where the time goes.");
    println!("{}", report::cpu_table(&rows));
    if original.is_some() {
        println!(
            "The cost of the hardening: our functions called directly (as above) against the design's original ones, the same shapes in the same rounds."
        );
        println!("{}", report::original_table(&rows));
    }
    println!("{}", report::load_line());

    if cli.history_rows > 0 && cli.direct_runs() {
        history::run(cli, server, Some(&setup)).await?;
        println!("{}", report::load_line());
    }
    Ok(())
}
