//! The `strangler` command line: `run`, `check`, `routes`, `flip`, `diffs`, `replay`,
//! `events tail|replay`, `cluster export`.
//!
//! Every subcommand takes `--config PATH` (default `./routes.toml`). Errors are for people:
//! what was wrong, where, and what to do; the exit code is 0 on success, 1 otherwise.

mod admin_api;
mod cluster;
mod diffs;
mod events;
mod flip;
mod replay;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::RouteMode;
use crate::reload;

/// A strangler-fig migration proxy.
#[derive(Debug, Parser)]
#[command(name = "strangler", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Run {
        /// The routes file.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
        /// Log format (overrides `[log] format`).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Validate a routes file: exit 0 when valid, 1 with every error (file:line) otherwise.
    Check {
        /// The routes file (same as --config).
        file: Option<PathBuf>,
        /// The routes file.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
    /// List routes, or explain which route a request would take.
    Routes {
        /// The routes file.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
        /// Explain a request: METHOD PATH, e.g. `--explain GET /api/products/7`.
        #[arg(long, num_args = 2, value_names = ["METHOD", "PATH"])]
        explain: Option<Vec<String>>,
        /// Host of the explained request.
        #[arg(long)]
        host: Option<String>,
        /// A header of the explained request, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
    /// Change a route's mode in the routes file; a running proxy applies it.
    Flip {
        /// The route id (or `--all` with only a mode: the kill switch, `flip --all legacy`).
        #[arg(required_unless_present = "all")]
        route: Option<String>,
        /// The new mode.
        #[arg(value_enum)]
        mode: Option<ModeArg>,
        /// Move every route (`strangler flip --all legacy` sends everything back to the monolith).
        #[arg(long)]
        all: bool,
        /// Canary percentage (with mode `canary`).
        #[arg(long)]
        percent: Option<f64>,
        /// Allow transitions that skip evidence (legacy → retired, out of retired…).
        #[arg(long)]
        force: bool,
        /// Why (recorded in the audit journal and the route-changed event).
        #[arg(long)]
        reason: Option<String>,
        /// The routes file.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
    /// Show what shadowing has found so far, read from the running proxy's admin API.
    Diffs {
        /// Only this route.
        #[arg(long)]
        route: Option<String>,
        /// Recent regressions shown at most.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// The admin API's address, instead of `[admin] address` from the routes file.
        #[arg(long, value_name = "IP:PORT")]
        admin: Option<String>,
        /// The routes file.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
    /// Send a route's captured mismatches again, to a (fixed) candidate, and say which are
    /// resolved: exit 0 when all are, 1 otherwise.
    Replay {
        /// The route whose mismatches are replayed.
        #[arg(long)]
        route: String,
        /// Base URL of the candidate, e.g. http://127.0.0.1:9000.
        #[arg(long, value_name = "URL")]
        to: String,
        /// The corpus folder (default: `[shadow] corpus` of the routes file).
        #[arg(long, value_name = "DIR")]
        corpus: Option<PathBuf>,
        /// Requests in flight at most.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// The routes file.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
    /// Read the events the proxy published (`tail`), or publish stored ones again (`replay`).
    Events {
        /// What to do with them.
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Work with a fleet (`[cluster]`): `export` prints routes.toml with the fleet's modes.
    Cluster {
        /// What to do.
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A route mode on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// The monolith answers.
    Legacy,
    /// The monolith answers; the new service gets a copy.
    Shadow,
    /// The new service answers a share of users.
    Canary,
    /// The new service answers.
    Extracted,
    /// The new service answers; the monolith's route is gone.
    Retired,
}

impl From<ModeArg> for RouteMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Legacy => Self::Legacy,
            ModeArg::Shadow => Self::Shadow,
            ModeArg::Canary => Self::Canary,
            ModeArg::Extracted => Self::Extracted,
            ModeArg::Retired => Self::Retired,
        }
    }
}

/// Runs a parsed command line.
pub async fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config, log_format } => run(&config, log_format).await,
        Command::Events { command } => events::run(command).await,
        Command::Cluster { command } => cluster::run(command).await,
        Command::Check { file, config } => Ok(check(file.as_deref().unwrap_or(&config))),
        Command::Routes {
            config,
            explain,
            host,
            headers,
        } => routes(&config, explain, host, &headers).await,
        Command::Flip {
            route,
            mode,
            all,
            percent,
            force,
            reason,
            config,
        } => flip::run(&config, route, mode, all, percent, force, reason).await,
        Command::Diffs {
            route,
            limit,
            admin,
            config,
        } => {
            diffs::diffs(&config, admin.as_deref(), route.as_deref(), limit).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            route,
            to,
            corpus,
            concurrency,
            config,
        } => {
            let options = replay::Options {
                route,
                to,
                config,
                corpus,
                concurrency,
            };
            replay::replay(&options).await
        }
    }
}

async fn run(path: &Path, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let config = match crate::config::load(path) {
        Ok(c) => c,
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!(
                "strangler: {} error(s) in {}; fix them and run again",
                diags.0.len(),
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let format = log_format.unwrap_or(if config.raw().log.format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    });
    init_tracing(format, &config.raw().log.level);
    let handle = match crate::server::start(path).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("strangler: cannot start: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!(
        "strangler: proxy on http://{}  admin on http://{}  (config {})",
        handle.addr(),
        handle.admin_addr(),
        path.display()
    );
    let token = handle.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        token.cancel();
    });
    handle.wait().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Prints each gated route's figures and what its next step waits for, from the running proxy.
async fn print_gates(admin: &str) {
    let page: serde_json::Value = match admin_api::AdminApi::new(admin) {
        Ok(api) => match api.get("/admin/routes").await {
            Ok(page) => page,
            Err(e) => {
                println!("\npromotion gates: {e}");
                return;
            }
        },
        Err(e) => {
            println!("\npromotion gates: {e}");
            return;
        }
    };
    println!("\npromotion gates (from the running proxy at {admin}):");
    for route in page["routes"].as_array().into_iter().flatten() {
        let gate = &route["gate"];
        if gate.is_null() {
            continue;
        }
        let f = &gate["figures"];
        let rate = |n: &serde_json::Value, d: &serde_json::Value| {
            let d = d.as_f64().unwrap_or(0.0);
            if d == 0.0 {
                0.0
            } else {
                n.as_f64().unwrap_or(0.0) / d * 100.0
            }
        };
        println!(
            "  {:<20} {:<12} {} samples, regression {:.2} %, errors legacy {:.2} % / candidate {:.2} %, p99 {:.1} / {:.1} ms over {:.0} s{}",
            route["id"].as_str().unwrap_or("?"),
            gate["stage"].as_str().unwrap_or("?"),
            f["samples"],
            rate(&f["regressions"], &f["samples"]),
            rate(&f["legacy_errors"], &f["legacy_requests"]),
            rate(&f["candidate_errors"], &f["candidate_requests"]),
            f["legacy_p99_ms"].as_f64().unwrap_or(0.0),
            f["candidate_p99_ms"].as_f64().unwrap_or(0.0),
            f["span_secs"].as_f64().unwrap_or(0.0),
            if gate["auto"] == true { "  [auto]" } else { "" },
        );
        let decision = &gate["decision"];
        match decision["action"].as_str() {
            Some("hold") => {
                let next = decision["next"].as_str().unwrap_or("nothing");
                let missing: Vec<&str> = decision["missing"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str())
                    .collect();
                println!(
                    "  {:<20} next: {next}; waiting for: {}",
                    "",
                    missing.join("; ")
                );
            }
            Some(action) => println!("  {:<20} {action} now", ""),
            None => {}
        }
    }
}

/// Installs the global tracing subscriber (`RUST_LOG` overrides `level`).
pub fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn check(path: &Path) -> ExitCode {
    match reload::load_snapshot(path, None) {
        Ok(snapshot) => {
            println!(
                "{}: ok ({} routes, {} upstreams)",
                path.display(),
                snapshot.table.routes().len(),
                snapshot.config.raw().upstreams.len()
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!("{}: {} error(s)", path.display(), diags.0.len());
            ExitCode::FAILURE
        }
    }
}

/// In cluster mode, `snapshot` with the fleet's modes and the fleet to ask for revisions;
/// when NATS is unreachable, the file's modes with a warning.
async fn cluster_view(
    path: &Path,
    snapshot: reload::Snapshot,
) -> anyhow::Result<(
    reload::Snapshot,
    Option<std::sync::Arc<crate::cluster::Fleet>>,
)> {
    let Some(settings) = snapshot.config.raw().cluster.clone() else {
        return Ok((snapshot, None));
    };
    match crate::cluster::Fleet::client(settings, &snapshot.config, path).await {
        Ok(fleet) => {
            let config = fleet.overlay(snapshot.config.clone())?;
            Ok((reload::Snapshot::build(config, None)?, Some(fleet)))
        }
        Err(e) => {
            eprintln!(
                "strangler: {e}; showing routes.toml's modes, which the fleet may have changed"
            );
            Ok((snapshot, None))
        }
    }
}

async fn routes(
    path: &Path,
    explain: Option<Vec<String>>,
    host: Option<String>,
    headers: &[String],
) -> anyhow::Result<ExitCode> {
    let snapshot = match reload::load_snapshot(path, None) {
        Ok(s) => s,
        Err(diags) => {
            eprintln!("{diags}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // Cluster mode: the modes (and their revisions) are the fleet's, not the file's.
    let (snapshot, fleet) = cluster_view(path, snapshot).await?;
    let table = &snapshot.table;
    let Some(explain) = explain else {
        if let Some(fleet) = &fleet {
            if let Err(e) = fleet.read_members().await {
                eprintln!("strangler: {e}; the APPLIED column shows no instance");
            }
        }
        let live = fleet.as_ref().map_or(0, |f| f.members().len());
        println!(
            "{:<20} {:<12} {:<32} {:<12} {:<12} {:<9} APPLIED",
            "ROUTE", "MODE", "PATH", "LEGACY", "EXTRACTED", "REVISION"
        );
        for route in table.routes() {
            let mode = match (&route.mode, &route.canary) {
                (RouteMode::Canary, Some(c)) => format!("canary {}%", c.percent),
                (mode, _) => mode.to_string(),
            };
            let revision = fleet.as_ref().and_then(|f| f.revision(&route.id));
            let applied = match (&fleet, revision) {
                (Some(f), Some(r)) => format!("{}/{live}", f.applied_by(&route.id, r).len()),
                _ => "-".to_owned(),
            };
            let revision = revision.map_or_else(|| "-".to_owned(), |r| r.to_string());
            println!(
                "{:<20} {:<12} {:<32} {:<12} {:<12} {revision:<9} {applied}",
                route.id,
                mode,
                route.pattern,
                route.legacy,
                route.extracted.as_deref().unwrap_or("-")
            );
        }
        if let Some(fleet) = &fleet {
            println!(
                "(modes from bucket `{}`; APPLIED: live instances serving that revision)",
                fleet.bucket_name()
            );
        }
        println!("(unmatched requests → {})", table.default_upstream());
        if table.routes().iter().any(|r| r.promote.is_some()) {
            print_gates(&snapshot.config.raw().admin.address).await;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let [method, request_path] = explain.as_slice() else {
        anyhow::bail!("--explain takes METHOD PATH, e.g. --explain GET /api/products/7");
    };
    let method: http::Method = method
        .to_ascii_uppercase()
        .parse()
        .with_context(|| format!("`{method}` is not an HTTP method"))?;
    let mut header_map = http::HeaderMap::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("header `{h}` must look like `Name: value`"))?;
        let name: http::HeaderName = name
            .trim()
            .parse()
            .with_context(|| format!("`{name}` is not a header name"))?;
        let value: http::HeaderValue = value
            .trim()
            .parse()
            .with_context(|| format!("`{value}` is not a header value"))?;
        header_map.append(name, value);
    }
    let request_path = request_path.split('?').next().unwrap_or(request_path);
    let explanation = table
        .explain(&method, host.as_deref(), request_path, &header_map)
        .to_string();
    println!("{}", explanation.trim_end());
    Ok(ExitCode::SUCCESS)
}
