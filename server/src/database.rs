//! Opening the database: the embedded cluster by default, or the server DATABASE_URL names.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::backup::WalArchive;
use crate::embedded::{EmbeddedPostgres, IfRunning};
use crate::seed::{DemoSeed, seed_demo};

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The migrations as a server applies them: a migration it does not know, applied by a newer version, is
/// let be, so an older server still starts during an upgrade (migrations add first and remove later).
fn migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
    migrator.set_ignore_missing(true);
    migrator
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// A server someone else runs.
    Url(String),
    /// The private cluster, with its data folder and port, archiving its WAL to `archive` if given. With
    /// `share_running`, a cluster that is already running (a server's, for a set-up command) is used as it is
    /// and left running. Without, as for a server, a running cluster is shared while another server serves
    /// from it (the new version during an upgrade), and restarted otherwise (a killed server left it running).
    Embedded {
        data_dir: PathBuf,
        port: u16,
        share_running: bool,
        archive: Option<WalArchive>,
    },
}

/// The name the server's connections carry, by which a server tells whether another serves from its cluster.
pub const SERVER_APPLICATION_NAME: &str = "loyalty server";

/// The pool the server works with and, in the embedded default, the cluster behind it.
pub struct Database {
    /// The server's own connections, as the unprivileged role in the embedded default.
    pub pool: PgPool,
    /// One connection as the database owner, for set-up commands (programs, the first manager).
    pub owner: PgPool,
    pub embedded: Option<EmbeddedPostgres>,
    /// What the demo seed made, on the embedded cluster's first run.
    pub demo: Option<DemoSeed>,
    /// A server's: on closing, the cluster is stopped unless another server still serves from it.
    serving: bool,
}

impl Database {
    /// Starts the cluster if it is ours, applies the migrations and connects as the server's own role.
    pub async fn open(config: &DatabaseConfig, max_connections: u32) -> anyhow::Result<Self> {
        match config {
            DatabaseConfig::Url(url) => {
                let pool = pool_options(max_connections)
                    .connect(url)
                    .await
                    .context("connecting to DATABASE_URL")?;
                migrator().run(&pool).await.context("applying migrations")?;
                Ok(Self {
                    owner: pool.clone(),
                    pool,
                    embedded: None,
                    demo: None,
                    serving: false,
                })
            }
            DatabaseConfig::Embedded {
                data_dir,
                port,
                share_running,
                archive,
            } => {
                let archive = archive.as_ref();
                let mut cluster =
                    EmbeddedPostgres::open(data_dir, *port, IfRunning::Share, archive).await?;
                if !*share_running && !cluster.started_here() && servers_on(&cluster).await == 0 {
                    cluster = EmbeddedPostgres::open(data_dir, *port, IfRunning::Restart, archive)
                        .await?;
                }
                let (pool, owner, demo) = match open_embedded(&cluster, max_connections).await {
                    Ok(opened) => opened,
                    Err(err) => {
                        if cluster.started_here() {
                            let _ = cluster.stop().await;
                        }
                        return Err(err);
                    }
                };
                Ok(Self {
                    pool,
                    owner,
                    embedded: Some(cluster),
                    demo,
                    serving: !*share_running,
                })
            }
        }
    }

    /// Closes the pool, then stops the cluster: a server's, unless another server still serves from it; a
    /// set-up command's, if it started it.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        self.owner.close().await;
        if let Some(cluster) = self.embedded {
            let stop = if self.serving {
                servers_on(&cluster).await == 0
            } else {
                cluster.started_here()
            };
            if stop {
                cluster.stop().await?;
            }
        }
        Ok(())
    }
}

/// How many servers are connected to the cluster (none, if it cannot be asked).
async fn servers_on(cluster: &EmbeddedPostgres) -> i64 {
    let Ok(mut conn) =
        <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.superuser_url("postgres")).await
    else {
        return 0;
    };
    let servers = sqlx::query_scalar(
        "select count(*) from pg_catalog.pg_stat_activity where application_name = $1",
    )
    .bind(SERVER_APPLICATION_NAME)
    .fetch_one(&mut conn)
    .await
    .unwrap_or(0);
    let _ = sqlx::Connection::close(conn).await;
    servers
}

/// The name of the server's database inside the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "loyalty";

async fn open_embedded(
    cluster: &EmbeddedPostgres,
    max_connections: u32,
) -> anyhow::Result<(PgPool, PgPool, Option<DemoSeed>)> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&cluster.superuser_url("postgres"))
        .await
        .context("connecting to the embedded PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(EMBEDDED_DATABASE)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query("create database loyalty")
            .execute(&admin)
            .await?;
    }
    admin.close().await;

    // Kept open while the server runs, so that a server starting beside it sees it is there.
    let owner = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .connect_with(
            cluster
                .superuser_url(EMBEDDED_DATABASE)
                .parse::<PgConnectOptions>()?
                .application_name(SERVER_APPLICATION_NAME),
        )
        .await?;
    migrator()
        .run(&owner)
        .await
        .context("applying migrations")?;
    let demo = seed_demo(&owner)
        .await
        .context("seeding the demo program")?;
    // The server itself connects as the unprivileged role the migrations grant to.
    let password = cluster.app_password()?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter role loyalty_app login password '{password}'"
    )))
    .execute(&owner)
    .await?;

    let url = format!(
        "postgres://loyalty_app:{password}@127.0.0.1:{}/{EMBEDDED_DATABASE}",
        cluster.port()
    );
    let app = url
        .parse::<PgConnectOptions>()?
        .application_name(SERVER_APPLICATION_NAME);
    Ok((
        pool_options(max_connections).connect_with(app).await?,
        owner,
        demo,
    ))
}

/// Pool settings: fail fast when the database is gone rather than queue a clerk's request for long.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        // A connection in steady use is not pinged before every request (that doubled the round trips of an
        // API call); one that sat idle for a while is, so a restarted database is noticed before it is used.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(1) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}
