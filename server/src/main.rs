use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use app::backups::BackupReport;
use axum::serve::ListenerExt;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use loyalty_core::wire::Role;
use server::backup::{self, BackupConfig};
use server::database::{Database, DatabaseConfig};
use server::{AppState, leptos_options, router_reporting};
use tokio::task::JoinHandle;

/// The loyalty server: the staff dashboard and its API. With no DATABASE_URL it runs its own PostgreSQL under
/// --data-dir.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// A PostgreSQL server to use instead of the embedded one.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Where the embedded PostgreSQL keeps its data between runs.
    #[arg(long, env = "LOYALTY_DATA_DIR", default_value = ".data", global = true)]
    data_dir: PathBuf,
    /// The port the embedded PostgreSQL listens on (127.0.0.1 only).
    #[arg(long, env = "LOYALTY_PG_PORT", default_value_t = 54329, global = true)]
    pg_port: u16,
    /// Where the dashboard and API listen.
    #[arg(long, env = "LOYALTY_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first); needs --tls-key.
    #[arg(long, env = "LOYALTY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "LOYALTY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mark the session cookie Secure when an HTTPS proxy in front serves the dashboard (implied by --tls-cert).
    #[arg(long, env = "LOYALTY_SECURE_COOKIES")]
    secure_cookies: bool,
    /// The folder holding the dashboard's compiled browser code (pkg/) as the build script makes it.
    #[arg(long, env = "LOYALTY_SITE_ROOT", default_value = "target/site")]
    site_root: String,
    /// Database connections the server keeps open.
    #[arg(long, env = "LOYALTY_DB_POOL", default_value_t = 16)]
    db_pool: u32,
    /// An external wallet service (https://, or http:// for a relay on the same host) told of every claimed
    /// pass and every balance change; unset, nothing is sent.
    #[arg(long, env = "LOYALTY_WALLET_WEBHOOK_URL")]
    wallet_webhook_url: Option<String>,
    /// PEM certificates the webhook's server certificate may also chain to (a private CA), beside the system's.
    #[arg(
        long,
        env = "LOYALTY_WALLET_WEBHOOK_CA",
        requires = "wallet_webhook_url"
    )]
    wallet_webhook_ca: Option<PathBuf>,
    /// The file holding the secret that members' phone numbers and emails are kept under (at least 32
    /// characters). Unset, it is contact.key in --data-dir, made on first start. Keep it apart from the
    /// database and its backups: the database alone must not be a contact list.
    #[arg(long, env = "LOYALTY_CONTACT_KEY_FILE")]
    contact_key_file: Option<PathBuf>,
    #[command(flatten)]
    wallet: server::wallet::settings::WalletArgs,
    /// A folder, best on another disk, for continuous backups of the embedded database: its WAL archived as
    /// it is written, and base backups on a schedule. Unset, nothing is backed up.
    #[arg(long, env = "LOYALTY_BACKUP_DIR", global = true)]
    backup_dir: Option<PathBuf>,
    /// Hours between base backups.
    #[arg(long, env = "LOYALTY_BASE_BACKUP_HOURS", default_value_t = 24, global = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    base_backup_hours: u32,
    /// Base backups kept; older ones are removed, with the archived WAL only they needed.
    #[arg(long, env = "LOYALTY_BACKUP_KEEP", default_value_t = 7, global = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    backup_keep: u32,
    /// Seconds after which changes are archived even when their WAL segment is not full: the most a lost
    /// disk can lose.
    #[arg(long, env = "LOYALTY_ARCHIVE_TIMEOUT", default_value_t = 60, global = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    archive_timeout: u32,
    /// How log lines are written: text for people, json (one object a line) for log collectors.
    #[arg(long, env = "LOYALTY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Log lines go to standard error, filtered by RUST_LOG (info by default).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal; none in a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the dashboard and API (the default).
    Serve,
    /// Create a program's first manager (and the program, if it does not exist yet). The password is read
    /// from LOYALTY_MANAGER_PASSWORD or, if unset, from the first line of standard input.
    CreateManager {
        /// The program's name.
        #[arg(long)]
        program: String,
        #[arg(long)]
        email: String,
        /// The manager's name as staff see it.
        #[arg(long)]
        name: String,
    },
    /// Take a base backup of the embedded database into the backup folder now (beside a running server, too).
    Backup,
    /// Rebuild the embedded database's data folder from a backup folder: its newest base backup and the WAL
    /// archived since, to the last change archived or to --to-time. The server must be stopped; a data folder
    /// already there is moved aside.
    Restore {
        /// The backup folder to restore from.
        #[arg(long)]
        from: PathBuf,
        /// Restore to this time (RFC 3339, e.g. 2026-11-03T14:30:00+01:00): changes committed after it are
        /// left out.
        #[arg(long, value_parser = parse_time)]
        to_time: Option<DateTime<Utc>>,
    },
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.to_utc())
        .map_err(|err| format!("{err} (expected RFC 3339, e.g. 2026-11-03T14:30:00+01:00)"))
}

impl Cli {
    /// The backups of --backup-dir, if set.
    fn backups(&self) -> Option<BackupConfig> {
        self.backup_dir
            .as_deref()
            .map(|folder| self.backups_in(folder))
    }

    fn backups_in(&self, folder: &Path) -> BackupConfig {
        BackupConfig {
            folder: folder.to_owned(),
            every: Duration::from_secs(u64::from(self.base_backup_hours) * 3600),
            keep: self.backup_keep as usize,
            archive_timeout: Duration::from_secs(self.archive_timeout.into()),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let backups = cli.backups();
    if cli.database_url.is_some() && backups.is_some() {
        anyhow::bail!(
            "--backup-dir backs up the embedded database; a PostgreSQL given by DATABASE_URL is backed up by \
             whoever runs it (see the README)"
        );
    }
    if let Some(Command::Restore { from, to_time }) = &cli.command {
        return restore(&cli, from, *to_time).await;
    }
    if let Some(backups) = &backups {
        backups
            .prepare(&server::embedded::PgPrograms::find()?)
            .await?;
    }
    let config = match &cli.database_url {
        Some(url) => DatabaseConfig::Url(url.clone()),
        None => DatabaseConfig::Embedded {
            data_dir: cli.data_dir.clone(),
            port: cli.pg_port,
            // A set-up command run beside a serving server shares its cluster.
            share_running: !matches!(cli.command, None | Some(Command::Serve)),
            archive: backups.as_ref().map(BackupConfig::wal_archive),
        },
    };
    let db = Database::open(&config, cli.db_pool).await?;
    let result = match &cli.command {
        Some(Command::CreateManager {
            program,
            email,
            name,
        }) => create_manager(&db, program, email, name).await,
        Some(Command::Backup) => base_backup(&db, backups.as_ref()).await,
        Some(Command::Restore { .. }) => unreachable!("a restore runs without the database open"),
        Some(Command::Serve) | None => {
            let report = match (&backups, &db.embedded) {
                (Some(config), Some(cluster)) => {
                    let report = backup::report_for(&config.folder);
                    tokio::spawn(backup::keep_base_backups(
                        cluster.clone(),
                        config.clone(),
                        report.clone(),
                    ));
                    tokio::spawn(backup::watch_archive(
                        db.pool.clone(),
                        report.clone(),
                        cluster.pgdata().to_owned(),
                    ));
                    report
                }
                _ => BackupReport::default(),
            };
            let (wallet, wallets) = start_wallets(&db, &cli).await?;
            let days = tokio::spawn(roll_up_ledger_days(db.pool.clone()));
            let identity = match (&cli.tls_cert, &cli.tls_key) {
                (Some(cert), Some(key)) => Some(server::tls::Identity::load(cert, key)?),
                _ => None,
            };
            // Listening for SIGHUP from here on, before the port opens: unheard, it would end the process.
            let reloads = match &identity {
                Some(identity) => {
                    let hangups =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                            .context("installing the SIGHUP handler")?;
                    Some(tokio::spawn(reload_on_hangup(identity.clone(), hangups)))
                }
                None => None,
            };
            let tls = identity
                .map(|identity| identity.server_config())
                .transpose()?;
            let served = serve(&db, &cli, tls, report, wallets).await;
            reloads.inspect(JoinHandle::abort);
            wallet.iter().for_each(JoinHandle::abort);
            days.abort();
            served
        }
    };
    db.close().await?;
    result
}

/// Switches on the wallet channels the settings set up, and nothing else, and starts their workers.
async fn start_wallets(
    db: &Database,
    cli: &Cli,
) -> anyhow::Result<(Vec<JoinHandle<()>>, server::wallet::WalletConfig)> {
    use server::wallet::{Webhook, devices, outbox};
    let wallets = cli.wallet.wallets()?;
    let webhook = cli
        .wallet_webhook_url
        .as_deref()
        .map(|url| {
            Webhook::new(
                url,
                Duration::from_secs(10),
                cli.wallet_webhook_ca.as_deref(),
            )
        })
        .transpose()?;
    devices::set_channels(&db.pool, &wallets.channels(webhook.as_ref()))
        .await
        .context("switching on the wallet channels")?;
    let mut workers = Vec::new();
    if let Some(webhook) = webhook {
        workers.push(server::wallet::spawn(
            db.pool.clone(),
            webhook.clone(),
            Default::default(),
        ));
        workers.push(outbox::spawn(db.pool.clone(), webhook, Default::default()));
    }
    if let Some(apns) = wallets.apns {
        workers.push(outbox::spawn(db.pool.clone(), apns, Default::default()));
    }
    if let Some(google) = wallets.config.google.clone() {
        workers.push(outbox::spawn(db.pool.clone(), google, Default::default()));
    }
    Ok((workers, wallets.config))
}

/// Reads the TLS certificate and key again at each SIGHUP: how a renewed certificate is put in service.
async fn reload_on_hangup(
    identity: std::sync::Arc<server::tls::Identity>,
    mut hangups: tokio::signal::unix::Signal,
) {
    while hangups.recv().await.is_some() {
        match identity.reload() {
            Ok(()) => tracing::info!("reloaded the TLS certificate"),
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "the TLS certificate was not reloaded; the one in use stays"
            ),
        }
    }
}

/// Keeps the history's day sums up to date: at start, then every hour. A failure (the database away, say) is
/// logged and tried again at the next hour; until then the history sums those days row by row.
async fn roll_up_ledger_days(pool: sqlx::PgPool) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        if let Err(err) = app::history::db::roll_up_ledger_days(&pool).await {
            tracing::warn!(error = %err, "summing the ledger's days failed");
        }
        // Expiry before the next roll-up: its rows are summed with the day they were written on.
        match app::rules::db::run_every_expiry(&pool).await {
            Ok(0) => {}
            Ok(points) => tracing::info!(points, "points past their date expired"),
            Err(err) => tracing::warn!(error = %err, "the points expiry run failed"),
        }
    }
}

async fn serve(
    db: &Database,
    cli: &Cli,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    backups: BackupReport,
    wallet: server::wallet::WalletConfig,
) -> anyhow::Result<()> {
    let (addr, site_root) = (cli.addr, cli.site_root.as_str());
    // Before listening: a server with the wrong key never answers anyone.
    let contact_key =
        server::contact_key::for_database(&db.pool, cli.contact_key_file.as_deref(), &cli.data_dir)
            .await?;
    if let Some(demo) = &db.demo {
        println!("Seeded the demo program {:?}.", server::seed::DEMO_PROGRAM);
        println!("  members:    {}", demo.members.join(", "));
        println!("  postcards:  {}", demo.claim_codes[..5].join(", "));
    }
    let listener = server::listener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    if !std::path::Path::new(site_root).join("pkg").exists() {
        tracing::warn!(
            "{site_root}/pkg is missing: pages will work without their browser code (build it with scripts/run.sh)"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("Loyalty dashboard: {scheme}://{addr}/");
    if server::seed::demo_staff_exists(&db.owner).await? {
        for (email, _, password, role) in server::seed::DEMO_STAFF {
            println!("  sign in as {} with {email} / {password}", role.as_sql());
        }
    }
    let app = router_reporting(
        AppState {
            pool: db.pool.clone(),
            leptos_options: leptos_options(site_root, addr),
            secure_cookies: tls.is_some() || cli.secure_cookies,
            wallet,
            contact_key,
        },
        backups,
    )
    .into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        // Tapped, so that the client's address reaches the handlers as over plain TCP.
        Some(tls) => {
            let listener = server::tls::TlsListener::new(listener, tls)?.tap_io(|_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    }
    .context("serving")?;
    tracing::info!("shut down: stopped listening and answered every request in hand");
    Ok(())
}

/// `server backup`: a base backup now, and the pruning that follows it.
async fn base_backup(db: &Database, config: Option<&BackupConfig>) -> anyhow::Result<()> {
    let (Some(config), Some(cluster)) = (config, &db.embedded) else {
        anyhow::bail!(
            "backups are of the embedded database, into the folder set by --backup-dir (LOYALTY_BACKUP_DIR)"
        );
    };
    let backup = backup::take_base_backup(cluster, config).await?;
    println!("Took the base backup {}.", backup.path.display());
    Ok(())
}

/// `server restore`: the data folder rebuilt from a backup folder, while no server runs on it.
async fn restore(cli: &Cli, from: &Path, to_time: Option<DateTime<Utc>>) -> anyhow::Result<()> {
    anyhow::ensure!(
        cli.database_url.is_none(),
        "restore rebuilds the embedded database; a PostgreSQL given by DATABASE_URL is restored by whoever \
         runs it"
    );
    // The restored database goes on archiving where backups are kept, or else into the folder it came from.
    let archive = cli.backups().unwrap_or_else(|| cli.backups_in(from));
    let programs = server::embedded::PgPrograms::find()?;
    archive.prepare(&programs).await?;
    let restored = server::restore::restore(
        &cli.data_dir,
        cli.pg_port,
        from,
        to_time,
        &archive.wal_archive(),
    )
    .await?;
    if let Some(aside) = &restored.set_aside {
        println!(
            "Moved the data folder that was there to {}.",
            aside.display()
        );
    }
    let to = match restored.replayed_to {
        Some(at) => format!(
            "the last change replayed was committed at {}",
            at.to_rfc3339()
        ),
        None => "no change was archived after it".to_owned(),
    };
    println!(
        "Restored {} from the base backup {} and the WAL archived since: {to}.",
        cli.data_dir.display(),
        restored.base_backup
    );
    println!(
        "Start the server as usual; a fresh base backup (`server backup`) makes the next restore quicker."
    );
    Ok(())
}

async fn create_manager(
    db: &Database,
    program: &str,
    email: &str,
    name: &str,
) -> anyhow::Result<()> {
    let password = match std::env::var("LOYALTY_MANAGER_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            eprintln!(
                "Password for {email} (at least {} characters):",
                loyalty_core::error::PASSWORD_MIN_CHARS
            );
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let program_id: uuid::Uuid = sqlx::query_scalar(
        "with found as (select id from public.programs where name = $1),
              made as (insert into public.programs (name) select $1 where not exists (select 1 from found) returning id)
         select id from found union all select id from made",
    )
    .bind(program)
    .fetch_one(&db.owner)
    .await?;
    app::auth::db::create_staff(&db.owner, program_id, email, name, Role::Manager, &password)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    println!("Created manager {email} in {program:?}.");
    Ok(())
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
