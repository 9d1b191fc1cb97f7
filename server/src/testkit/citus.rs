//! Tests through a Citus coordinator: with `TEST_CITUS_URL` (a superuser URL of a coordinator whose workers
//! are added, as `scripts/citus.sh up` prints), each test's database is made on every node, migrated on the
//! coordinator and distributed by `citus/distribute.sql`, as an operator would, and dropped from every node
//! when the test ends.

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::cluster::exec;

/// The file that distributes the migrated schema, as the cluster script runs it.
pub const DISTRIBUTE_SQL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../citus/distribute.sql");

/// The coordinator's superuser URL when the tests run through Citus.
pub fn citus_url() -> Option<String> {
    std::env::var("TEST_CITUS_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A worker node as the coordinator lists it.
#[derive(Debug, Clone)]
pub struct Worker {
    pub host: String,
    pub port: u16,
}

/// The workers of the coordinator at `coordinator` (any database with Citus).
pub async fn workers(coordinator: &PgConnectOptions) -> Vec<Worker> {
    let mut conn = PgConnection::connect_with(coordinator).await.unwrap();
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "select nodename::text, nodeport from pg_dist_node where groupid <> 0 and noderole = 'primary'
          order by nodeport",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    rows.into_iter()
        .map(|(host, port)| Worker {
            host,
            port: u16::try_from(port).expect("a port"),
        })
        .collect()
}

/// The tests of one process make and drop their databases one at a time: Citus propagates each node's
/// grants and adds its nodes with connections of its own, and two tests doing it at once were refused now and
/// then ("tuple concurrently updated", "failure on connection marked as essential").
static MAKING_OR_DROPPING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A new database on every node of the cluster, migrated and distributed: its name.
pub(super) async fn make_distributed_database(coordinator: &PgConnectOptions) -> String {
    let _turn = MAKING_OR_DROPPING.lock().await;
    let name = format!("citus_{}", Uuid::new_v4().simple());
    let workers = workers(coordinator).await;
    assert!(!workers.is_empty(), "the coordinator has no workers");
    let coordinator_port = coordinator.get_port();
    let coordinator_host = coordinator.get_host().to_owned();
    for (host, port) in workers
        .iter()
        .map(|w| (w.host.clone(), w.port))
        .chain([(coordinator_host.clone(), coordinator_port)])
    {
        let node = coordinator.clone().host(&host).port(port);
        let mut admin = PgConnection::connect_with(&node.clone().database("postgres"))
            .await
            .unwrap_or_else(|e| panic!("connecting to the node on {port}: {e}"));
        exec(&mut admin, &format!("create database {name}")).await;
        admin.close().await.unwrap();
        let mut conn = PgConnection::connect_with(&node.database(&name))
            .await
            .unwrap();
        exec(&mut conn, "create extension citus").await;
        conn.close().await.unwrap();
    }
    let options = coordinator.clone().database(&name);
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    exec(
        &mut conn,
        &format!("select citus_set_coordinator_host('{coordinator_host}', {coordinator_port})"),
    )
    .await;
    for worker in &workers {
        exec(
            &mut conn,
            &format!("select citus_add_node('{}', {})", worker.host, worker.port),
        )
        .await;
    }
    crate::database::MIGRATOR
        .run(&mut conn)
        .await
        .expect("migrating the distributed test database");
    conn.close().await.unwrap();
    run_sql_file(&options, DISTRIBUTE_SQL);
    name
}

/// Drops a database [`make_distributed_database`] made, from the coordinator first, then from each worker.
pub(super) async fn drop_distributed_database(coordinator: &PgConnectOptions, name: &str) {
    let _turn = MAKING_OR_DROPPING.lock().await;
    let mut nodes = vec![coordinator.clone()];
    nodes.extend(
        workers(coordinator)
            .await
            .into_iter()
            .map(|w| coordinator.clone().host(&w.host).port(w.port)),
    );
    for node in nodes {
        if let Ok(mut admin) = PgConnection::connect_with(&node.database("postgres")).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists {name} with (force)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

/// Runs a SQL file with psql, as an operator does, stopping at the first error.
pub fn run_sql_file(options: &PgConnectOptions, path: &str) {
    let output = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", path])
        .env("PGHOST", options.get_host())
        .env("PGPORT", options.get_port().to_string())
        .env("PGDATABASE", options.get_database().expect("a database"))
        .env("PGUSER", options.get_username())
        .output()
        .expect("running psql");
    assert!(
        output.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
