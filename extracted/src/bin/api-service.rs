//! `api-service`: the extracted back-end API (`/api`) on its own, with its own storage.
//!
//! A thin shell over [`extracted::api::serve_with`]: parse the command line, open the
//! database (SQLite file by default, or PostgreSQL), optionally subscribe to the proxy's
//! event bus to keep in step with the monolith, serve until Ctrl-C, then finish the requests
//! in flight.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use extracted::api::{CONSUMER_NAME, Database, EventSource, Options};
use tokio::net::TcpListener;

/// Serve the JSON API peeled off the legacy shop.
#[derive(Debug, Parser)]
#[command(name = "api-service", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: String,
    /// Where the data lives: `sqlite:PATH`, `sqlite::memory:` or
    /// `postgres://user@host:port/dbname`.
    #[arg(long, default_value = "sqlite:data/api-service.db")]
    database: Database,
    /// With PostgreSQL: a schema of the service's own (created if missing).
    #[arg(long)]
    database_schema: Option<String>,
    /// Keep in step with the monolith: consume the events the proxy publishes on the `[bus]`
    /// of this strangler routes.toml.
    #[arg(long)]
    bus_config: Option<PathBuf>,
    /// The durable consumer name on the bus (its reading position is kept under it).
    #[arg(long, default_value = CONSUMER_NAME)]
    consumer_name: String,
    /// The monolith, reached directly: an event naming an order by its id only (the page
    /// checkout's) is completed from its `GET /api/orders/{id}`.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    legacy_url: String,
    /// Fixed timestamps and counter-based ids (like legacy-shim's `vary = false`), so two runs
    /// answer byte for byte the same.
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
    let database = match (args.database, args.database_schema) {
        (Database::Postgres { url, .. }, schema) => Database::Postgres { url, schema },
        (_, Some(_)) => anyhow::bail!("--database-schema is for a postgres:// --database only"),
        (sqlite, None) => sqlite,
    };
    let options = Options {
        vary: !args.stable,
        database,
        events: args.bus_config.map(|config| EventSource {
            config,
            consumer: args.consumer_name,
            legacy_url: args.legacy_url,
        }),
    };
    let listener = TcpListener::bind(&args.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is something else running there?",
            args.listen
        )
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(%addr, stable = args.stable, consuming = options.events.is_some(), "API service listening");
    let shutdown = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C; stopping");
        }
    };
    extracted::api::serve_with(listener, options, shutdown)
        .await
        .context("the API service failed")?;
    tracing::info!("API service stopped");
    Ok(())
}
