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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client::new(&args.server).context("setting up the HTTP client")?;
    let mut terminal = ratatui::init();
    let result = tui::run(&mut terminal, client).await;
    ratatui::restore();
    result
}
