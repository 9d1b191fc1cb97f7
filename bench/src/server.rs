//! The server under test, as a child process on its own embedded PostgreSQL under the work folder, or on a
//! database given by URL (a Citus coordinator, say).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::process::{Child, Command};

use crate::Cli;

pub const PROGRAM: &str = "Bench";
pub const MANAGER_EMAIL: &str = "manager@bench.test";
/// Every bench account signs in with it; the clerks' hash is the manager's.
pub const PASSWORD: &str = "bench-password-1";

pub struct Server {
    child: Child,
    pub url: String,
    data_dir: PathBuf,
    pg_port: u16,
    database_url: Option<String>,
    pgdata: Vec<PathBuf>,
    /// The database owner (the cluster's superuser), for seeding and checks.
    pub owner: PgPool,
}

impl Server {
    pub async fn start(cli: &Cli) -> anyhow::Result<Self> {
        if cli.work_dir.exists() && !cli.history_only {
            std::fs::remove_dir_all(&cli.work_dir)
                .with_context(|| format!("emptying {}", cli.work_dir.display()))?;
        }
        std::fs::create_dir_all(&cli.work_dir)?;
        let data_dir = cli.work_dir.join("data");
        let log = std::fs::File::create(cli.work_dir.join("server.log"))?;
        let url = format!("http://127.0.0.1:{}", cli.port);
        if reqwest::get(format!("{url}/healthz")).await.is_ok() {
            bail!("port {} is taken by another program", cli.port);
        }
        let child = Command::new(&cli.server_bin)
            .args(database_args(cli, &data_dir))
            .args(["--addr", &format!("127.0.0.1:{}", cli.port)])
            .args(["--db-pool", &cli.db_pool.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", cli.server_bin.display()))?;
        let pgdata = if cli.pgdata.is_empty() {
            vec![data_dir.join("pgdata")]
        } else {
            cli.pgdata.clone()
        };
        let mut server = Self {
            child,
            url,
            data_dir,
            pg_port: cli.pg_port,
            database_url: cli.database_url.clone(),
            pgdata,
            owner: PgPoolOptions::new().connect_lazy("postgres://localhost")?,
        };
        let started = Instant::now();
        loop {
            if reqwest::get(format!("{}/healthz", server.url))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) || server.child.try_wait()?.is_some() {
                server.stop().await;
                bail!(
                    "the server did not start: see {}",
                    cli.work_dir.join("server.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let made = Command::new(&cli.server_bin)
            .args(database_args(cli, &server.data_dir))
            .args([
                "create-manager",
                "--program",
                PROGRAM,
                "--email",
                MANAGER_EMAIL,
            ])
            .args(["--name", "Bench manager"])
            .env("LOYALTY_MANAGER_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !made.status.success() && !cli.history_only {
            server.stop().await;
            bail!(
                "create-manager failed: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        server.owner = PgPoolOptions::new()
            .max_connections(2)
            .connect(&server.superuser_url())
            .await
            .context("connecting as the database owner")?;
        Ok(server)
    }

    fn secret(&self, file: &str) -> String {
        std::fs::read_to_string(self.data_dir.join(file))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    pub fn superuser_url(&self) -> String {
        if let Some(url) = &self.database_url {
            return url.clone();
        }
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/loyalty",
            self.secret("superuser.password"),
            self.pg_port
        )
    }

    /// The server's own role: pgbench connects as it, with the same rights and settings.
    pub fn app_url(&self) -> String {
        format!(
            "postgres://loyalty_app:{}@127.0.0.1:{}/loyalty",
            self.secret("app.password"),
            self.pg_port
        )
    }

    /// A processor-time meter for this server and its cluster.
    pub fn meter(&self) -> crate::cpu::Meter {
        crate::cpu::Meter::new(self.child.id().unwrap_or(0), &self.pgdata)
    }

    /// SIGTERM, so the server stops its cluster on the way out.
    pub async fn stop(mut self) {
        self.owner.close().await;
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The server's database: the URL given, or the embedded cluster in the work folder.
fn database_args(cli: &Cli, data_dir: &Path) -> Vec<String> {
    match &cli.database_url {
        Some(url) => vec!["--database-url".into(), url.clone()],
        None => vec![
            "--data-dir".into(),
            path_str(data_dir).into(),
            "--pg-port".into(),
            cli.pg_port.to_string(),
        ],
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}
