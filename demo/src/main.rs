//! `cargo run --release`: the whole demo on one machine.
//!
//! Starts legacy-shim (the monolith) on 127.0.0.1:8081, the extracted services, and the
//! strangler proxy on 127.0.0.1:8080 (admin on 127.0.0.1:9901) driven by the root
//! `routes.toml`, then prints where to look. Ctrl-C stops everything gracefully.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs the strangler demo: monolith, extracted services and the proxy in front.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// The routes file (default: ./routes.toml, else the workspace's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where legacy-shim listens.
    #[arg(long, default_value = "127.0.0.1:8081")]
    legacy: String,
    /// Where the extracted misc service listens.
    #[arg(long, default_value = "127.0.0.1:8082")]
    misc: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    strangler::cli::init_tracing(strangler::cli::LogFormat::Text, "info");
    let config = args.config.unwrap_or_else(default_config);
    let stop = CancellationToken::new();

    let legacy = TcpListener::bind(&args.legacy).await.with_context(|| {
        format!(
            "cannot listen on {} for legacy-shim; is something else running there?",
            args.legacy
        )
    })?;
    let legacy_task = tokio::spawn(legacy_shim::serve(
        legacy,
        legacy_shim::Options::default(),
        stop.clone().cancelled_owned(),
    ));

    let misc = TcpListener::bind(&args.misc)
        .await
        .with_context(|| format!("cannot listen on {} for the misc service", args.misc))?;
    let misc_task = tokio::spawn(extracted::misc::serve(misc, stop.clone().cancelled_owned()));

    let proxy = strangler::server::start(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start strangler: {e}"))?;
    let proxy_addr = proxy.addr();
    let admin_addr = proxy.admin_addr();
    println!();
    println!("  strangler demo is up");
    println!("  shop through the proxy   http://{proxy_addr}/");
    println!("  the monolith directly    http://{}/", args.legacy);
    println!(
        "  extracted misc service   http://{}/misc/health",
        args.misc
    );
    println!("  admin API                http://{admin_addr}/admin/routes");
    println!(
        "  routes file              {}  (edit a mode; it applies live)",
        config.display()
    );
    println!(
        "  explain a request        cargo run -p strangler -- routes --config {} --explain GET /misc/currency",
        config.display()
    );
    println!();
    println!("  Ctrl-C stops everything.");

    let token = proxy.shutdown_token();
    strangler::cli::shutdown_signal().await;
    println!("stopping…");
    token.cancel();
    proxy.wait().await;
    stop.cancel();
    let _ = legacy_task.await;
    let _ = misc_task.await;
    Ok(())
}

fn default_config() -> PathBuf {
    let local = Path::new("routes.toml");
    if local.exists() {
        return local.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("routes.toml")
}
