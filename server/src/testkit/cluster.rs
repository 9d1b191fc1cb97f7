//! The one PostgreSQL cluster of a test run: the one `TEST_DATABASE_URL` names (a superuser URL), or else a
//! private cluster under `target/test-pg` started here with the server's own embedded module and left running
//! for the next run (the test script stops it). It holds a migrated template each test's database copies.
//! With `TEST_CITUS_URL` it is that Citus coordinator (see `super::citus`).

use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The superuser URL `cluster()` was made from.
static CLUSTER_URL: OnceLock<String> = OnceLock::new();

/// A superuser connection to the cluster's maintenance database.
pub(super) fn cluster() -> &'static PgConnectOptions {
    static CLUSTER: OnceLock<PgConnectOptions> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        // Its own runtime, since every test has one of its own and this outlives them all.
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(prepare_cluster())
        })
        .join()
        .expect("preparing the test cluster")
    })
}

/// The superuser URL of the cluster, for a server process that connects by itself.
pub(super) fn cluster_url() -> &'static str {
    cluster();
    CLUSTER_URL.get().expect("the cluster's URL")
}

async fn prepare_cluster() -> PgConnectOptions {
    let url = match super::citus::citus_url().map_or_else(|| std::env::var("TEST_DATABASE_URL"), Ok)
    {
        Ok(url) => url,
        Err(_) => {
            // LOYALTY_TEST_PG_DIR moves it (the test script does, where the postgres user cannot enter the tree).
            let root = std::env::var_os("LOYALTY_TEST_PG_DIR").map_or_else(
                || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-pg"),
                std::path::PathBuf::from,
            );
            let port =
                std::env::var("TEST_PG_PORT").map_or(54330, |p| p.parse().expect("TEST_PG_PORT"));
            crate::embedded::EmbeddedPostgres::attach_or_start(&root, port)
                .await
                .expect("starting the test PostgreSQL cluster")
                .superuser_url("postgres")
        }
    };
    let options: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL");
    CLUSTER_URL.get_or_init(|| url.clone());
    let mut admin = PgConnection::connect_with(&options)
        .await
        .expect("connecting to the test cluster");
    // Test processes started at once (several test binaries, or a worktree's) prepare the cluster one at a time.
    exec(&mut admin, "select pg_advisory_lock(7301)").await;
    // A migrated template per version of the migrations: each test's database is a cheap copy of it.
    let template = template_name();
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    // Through Citus each test process has a distributed database of its own instead (`super::citus`).
    if !exists && super::citus::citus_url().is_none() {
        let building = format!("{template}_building_{}", Uuid::new_v4().simple());
        exec(&mut admin, &format!("create database {building}")).await;
        let mut conn = PgConnection::connect_with(&options.clone().database(&building))
            .await
            .unwrap();
        crate::database::MIGRATOR
            .run(&mut conn)
            .await
            .expect("migrating the template");
        conn.close().await.unwrap();
        exec(
            &mut admin,
            &format!("alter database {building} rename to {template}"),
        )
        .await;
    }
    exec(
        &mut admin,
        "alter role loyalty_app login password 'loyalty_app'",
    )
    .await;
    // Roles with no rights of their own, for attacks: the intruder is granted what the server's role is
    // granted on the functions, the bystander nothing.
    for role in ["intruder", "bystander"] {
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
                .bind(role)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        // Through Citus they log in: a call delegated to a worker connects there as the role that made it.
        let login = if super::citus::citus_url().is_some() {
            "login"
        } else {
            "nologin"
        };
        if !exists {
            exec(&mut admin, &format!("create role {role} {login}")).await;
        } else if login == "login" {
            exec(&mut admin, &format!("alter role {role} login")).await;
        }
    }
    // Ends the session, and with it the advisory lock.
    admin.close().await.unwrap();
    options
}

pub(super) fn template_name() -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for migration in crate::database::MIGRATOR.iter() {
        for b in migration.checksum.iter() {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
    format!("loyalty_template_{hash:016x}")
}

pub(super) async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
