use anyhow::Context;
use clap::Parser;
use tui::client::Client;
use tui::journal::Journal;

/// The counter terminal of the loyalty program: scan passes and postcards, earn and redeem points.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The loyalty server's address.
    #[arg(long, env = "LOYALTY_SERVER", default_value = "http://127.0.0.1:3000")]
    server: String,
    /// PEM certificates an https:// server's certificate may also chain to (the store's own CA), beside the
    /// system's roots.
    #[arg(long, env = "LOYALTY_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// Where earns taken while the server cannot be reached are kept until they are sent (default: the user's
    /// data folder, loyalty-counter/journal). One terminal at a time may use a journal.
    #[arg(long, env = "LOYALTY_JOURNAL")]
    journal: Option<std::path::PathBuf>,
    /// This till's name, kept with each earn queued here (default: the machine's name).
    #[arg(long, env = "LOYALTY_TILL")]
    till: Option<String>,
}

/// The machine's name where the system says it, for a till that was not given one.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "counter".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let roots = match &args.ca_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA certificates {}", path.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
            anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
            roots
        }
        None => Vec::new(),
    };
    let client = Client::with_roots(&args.server, tui::client::REQUEST_TIMEOUT, roots)
        .context("setting up the HTTP client")?;
    let journal_path = match args.journal {
        Some(path) => path,
        None => Journal::default_path()
            .context("no data folder for the journal (HOME is not set): give one with --journal")?,
    };
    let journal = Journal::open(&journal_path)?;
    let till = args.till.unwrap_or_else(machine_name);
    let mut terminal = ratatui::init();
    let result = tui::run(&mut terminal, client, journal, &till).await;
    ratatui::restore();
    result
}
