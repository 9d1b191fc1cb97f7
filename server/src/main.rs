use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use server::database::{Database, DatabaseConfig};
use server::{AppState, router};

/// The loyalty server. With no DATABASE_URL it runs its own PostgreSQL under --data-dir.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// A PostgreSQL server to use instead of the embedded one.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Where the embedded PostgreSQL keeps its data between runs.
    #[arg(long, env = "LOYALTY_DATA_DIR", default_value = ".data")]
    data_dir: PathBuf,
    /// The port the embedded PostgreSQL listens on (127.0.0.1 only).
    #[arg(long, env = "LOYALTY_PG_PORT", default_value_t = 54329)]
    pg_port: u16,
    /// Where the dashboard and API listen.
    #[arg(long, env = "LOYALTY_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Database connections the server keeps open.
    #[arg(long, env = "LOYALTY_DB_POOL", default_value_t = 16)]
    db_pool: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = match cli.database_url {
        Some(url) => DatabaseConfig::Url(url),
        None => DatabaseConfig::Embedded {
            data_dir: cli.data_dir,
            port: cli.pg_port,
        },
    };
    let db = Database::open(&config, cli.db_pool).await?;
    if let Some(demo) = &db.demo {
        println!("Seeded the demo program {:?}.", server::seed::DEMO_PROGRAM);
        println!("  members:     {}", demo.members.join(", "));
        println!("  postcards:   {}", demo.claim_codes[..5].join(", "));
    }
    let listener = match tokio::net::TcpListener::bind(cli.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            db.close().await?;
            return Err(err).context(format!("listening on {}", cli.addr));
        }
    };
    println!("Loyalty server listening on http://{}", cli.addr);
    let app = router(AppState {
        pool: db.pool.clone(),
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    tracing::info!("shutting down");
    db.close().await?;
    served.context("serving")
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
