//! `cargo run --release`: the whole demo on one machine; `cargo run --release -- traffic`:
//! shop traffic through it.
//!
//! The demo starts legacy-shim (the monolith) on 127.0.0.1:8081, the extracted misc service
//! (with the thumbnail worker) on :8082, the API service on :8083, the UI front on :8084 and
//! the strangler proxy on :8080 (admin and dashboard on :9901), driven by the root
//! `routes.toml`, then prints where to look (`up`). `traffic` drives browsing, carting,
//! ordering and uploading through the proxy for a bounded number of rounds (`traffic`).

mod traffic;
mod up;

use clap::{Parser, Subcommand};

/// Runs the strangler demo: monolith, extracted services and the proxy in front.
#[derive(Debug, Parser)]
#[command(name = "demo", args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    up: up::UpArgs,
}

/// What to do besides bringing the demo up.
#[derive(Debug, Subcommand)]
enum Command {
    /// Drive realistic shop traffic through the running demo's proxy, then stop.
    Traffic(traffic::TrafficArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Traffic(traffic)) => traffic::run(traffic).await,
        None => {
            strangler::cli::init_tracing(strangler::cli::LogFormat::Text, "info");
            up::run(args.up).await
        }
    }
}
