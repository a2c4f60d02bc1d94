//! `misc-service`: the extracted `/misc` service on its own.
//!
//! A thin shell over [`extracted::misc::serve_with`]: parse the command line, bind, serve
//! until Ctrl-C, then finish the requests in flight.

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

/// Serve the `/misc` endpoints peeled off the legacy shop.
#[derive(Debug, Parser)]
#[command(name = "misc-service", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: String,
    /// Fixed timestamps and counter-based ids (like legacy-shim's `vary = false`), so two runs
    /// answer byte for byte the same.
    #[arg(long)]
    stable: bool,
    /// Turn on the known first-version defect: currency results rounded half-to-even.
    #[arg(long)]
    defect: bool,
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
    tracing::info!(%addr, stable = args.stable, defect = args.defect, "misc service listening");
    let options = extracted::misc::Options {
        vary: !args.stable,
        defect: args.defect,
    };
    let shutdown = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C; stopping");
        }
    };
    extracted::misc::serve_with(listener, options, shutdown)
        .await
        .context("serving the misc service failed")?;
    tracing::info!("misc service stopped");
    Ok(())
}
