//! `ui-front`: the shop's pages as a new service, with all their data from the JSON API.
//!
//! A thin shell over [`extracted::ui::serve`]: parse the command line, bind, serve until
//! Ctrl-C, then finish the requests in flight.

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

/// Serve the shop's server-rendered pages, calling the JSON API for every piece of data.
#[derive(Debug, Parser)]
#[command(name = "ui-front", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: String,
    /// The JSON API's base URL (the proxy's address, so `/api` follows its routes).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// A stopped clock and counter-based request ids (like legacy-shim's `vary = false`), so
    /// two runs answer byte for byte the same.
    #[arg(long)]
    stable: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let listener = TcpListener::bind(&args.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is something else running there?",
            args.listen
        )
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(%addr, api = %args.api_url, stable = args.stable, "UI front listening");
    let options = extracted::ui::Options {
        api_url: args.api_url,
        vary: !args.stable,
    };
    let shutdown = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C; stopping");
        }
    };
    extracted::ui::serve(listener, options, shutdown).await?;
    tracing::info!("UI front stopped");
    Ok(())
}
