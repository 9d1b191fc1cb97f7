use anyhow::Context;
use clap::Parser;
use tui::client::Client;

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
    let mut terminal = ratatui::init();
    let result = tui::run(&mut terminal, client).await;
    ratatui::restore();
    result
}
