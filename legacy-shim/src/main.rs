//! The `legacy-shim` binary: read flags (or `LEGACY_SHIM_*` env vars), bind, print the
//! address, and serve the shop until Ctrl-C or SIGTERM, finishing requests in flight.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clap::builder::BoolishValueParser;
use legacy_shim::{Options, serve};
use tracing_subscriber::EnvFilter;

/// An example legacy monolith (a small shop) for strangler to stand in front of.
#[derive(Debug, Parser)]
#[command(name = "legacy-shim", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LEGACY_SHIM_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Milliseconds added to every response.
    #[arg(
        long = "latency-ms",
        env = "LEGACY_SHIM_LATENCY_MS",
        default_value_t = 0
    )]
    latency_ms: u64,
    /// Share of requests answered 500, from 0.0 to 1.0 (never /misc/health).
    #[arg(long, env = "LEGACY_SHIM_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,
    /// Fixed timestamps and counter-based ids: identical runs give identical bytes.
    #[arg(long, env = "LEGACY_SHIM_STABLE", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    stable: bool,
    /// SQLite file to use (created and seeded if empty); in memory when absent.
    #[arg(long, env = "LEGACY_SHIM_DB")]
    db: Option<PathBuf>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("expected a number from 0.0 to 1.0, got {text:?}")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("legacy_shim=info")),
        )
        .init();
    let args = Args::parse();
    let opts = Options {
        latency: Duration::from_millis(args.latency_ms),
        error_rate: args.error_rate,
        vary: !args.stable,
        db_path: args.db,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let address = listener
        .local_addr()
        .context("could not read the bound address")?;
    println!("legacy-shim listening on http://{address}");
    serve(listener, opts, shutdown_signal()).await?;
    tracing::info!("legacy-shim stopped");
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
