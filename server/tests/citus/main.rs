//! The schema distributed over a real Citus cluster (`scripts/citus.sh up`, then `TEST_CITUS_URL` set to the
//! coordinator it prints): where the tables and functions are, the ledger's guard, the statistics and the grants
//! on the workers, the plans of the counter's statements, a shard moved under load, a worker lost under load, and
//! the program's rules, rewards, welcome offers and expiry, and the wallets' deliveries, through the coordinator.
//! Without `TEST_CITUS_URL` each test says it was skipped and passes: there is no Citus on the build machines.

mod layout;
mod moves;
mod outage;
mod rules;
mod wallets;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

use server::testkit::{TestDb, Worker, citus_url, new_program, workers};

/// The cluster's tests take turns: one stops a worker, another moves shards, the rest read what those change.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The coordinator's options when the tests run through Citus; None (and a note) when they do not.
fn coordinator(test: &str) -> Option<PgConnectOptions> {
    match citus_url() {
        Some(url) => Some(url.parse().expect("TEST_CITUS_URL")),
        None => {
            eprintln!("{test}: skipped, TEST_CITUS_URL is not set (see scripts/citus.sh)");
            None
        }
    }
}

/// Where a program's rows are: the shard of `passes_master` (its co-located shards move with it) and its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    shard_id: i64,
    host: String,
    port: u16,
}

async fn placement(owner: &PgPool, program_id: Uuid) -> Placement {
    let (shard_id, host, port): (i64, String, i32) = sqlx::query_as(
        "select p.shardid, p.nodename::text, p.nodeport
           from pg_dist_shard_placement p
          where p.shardid = get_shard_id_for_distribution_column('public.passes_master', $1)",
    )
    .bind(program_id)
    .fetch_one(owner)
    .await
    .unwrap();
    Placement {
        shard_id,
        host,
        port: u16::try_from(port).unwrap(),
    }
}

/// A program of `db` held by each worker, in the workers' order: the database's own program where it fits.
async fn program_per_worker(db: &TestDb, workers: &[Worker]) -> Vec<Uuid> {
    let mut found: Vec<Option<Uuid>> = vec![None; workers.len()];
    let mut candidate = db.program_id;
    loop {
        let at = placement(&db.owner, candidate).await;
        let index = workers.iter().position(|w| w.port == at.port).unwrap();
        found[index].get_or_insert(candidate);
        if found.iter().all(Option::is_some) {
            return found.into_iter().map(Option::unwrap).collect();
        }
        candidate = new_program(&db.owner, "Citus program").await;
    }
}

/// A superuser pool on a worker's copy of `db`'s database, to look at shards directly.
async fn on_worker(db: &TestDb, worker: &Worker) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(db.owner_options().host(&worker.host).port(worker.port))
        .await
        .unwrap()
}

async fn cluster_workers(db: &TestDb) -> Vec<Worker> {
    workers(&db.owner_options()).await
}
