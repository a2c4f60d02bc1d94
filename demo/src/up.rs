//! Bringing the demo up: the monolith, the extracted services, the thumbnail worker and the
//! proxy in front, all in this process, until Ctrl-C.
//!
//! Everything the demo keeps lives in `data/` beside the routes file (the monolith's and the
//! API service's SQLite files, the event log with the consumers' positions, the picture store,
//! the diff corpus), so a restart — e.g. with `--fixed` — carries on where it stopped and the
//! services stay in step with the monolith; `rm -rf data` starts over from the seed.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use extracted::api::{self, Database, EventSource};
use extracted::misc::PictureStore;
use extracted::worker::{orders, thumbnails};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where each part listens, and which misc version runs.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The routes file (default: ./routes.toml, else the workspace's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where legacy-shim, the monolith, listens.
    #[arg(long, default_value = "127.0.0.1:8081")]
    legacy: String,
    /// Where the extracted misc service listens.
    #[arg(long, default_value = "127.0.0.1:8082")]
    misc: String,
    /// Where the extracted API service listens.
    #[arg(long, default_value = "127.0.0.1:8083")]
    api: String,
    /// Where the extracted UI front listens.
    #[arg(long, default_value = "127.0.0.1:8084")]
    ui: String,
    /// Run the misc service with its currency-rounding defect fixed (by default the demo runs
    /// the first version, with the defect the shadow diff is meant to catch).
    #[arg(long)]
    fixed: bool,
}

/// The addresses everything ended up on, for the banner.
struct Addresses {
    proxy: SocketAddr,
    admin: SocketAddr,
    legacy: SocketAddr,
    misc: SocketAddr,
    api: SocketAddr,
    ui: SocketAddr,
}

/// Runs the whole demo until Ctrl-C (or until one of its services fails).
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let config = args.config.clone().unwrap_or_else(default_config);
    let data = config
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("data");
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the demo's data folder {}", data.display()))?;

    let legacy = bind(&args.legacy, "legacy-shim").await?;
    let misc = bind(&args.misc, "the misc service").await?;
    let api = bind(&args.api, "the API service").await?;
    let ui = bind(&args.ui, "the UI front").await?;

    let proxy = strangler::server::start(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start strangler with {}: {e}", config.display()))?;
    let addresses = Addresses {
        proxy: proxy.addr(),
        admin: proxy.admin_addr(),
        legacy: local_addr(&legacy)?,
        misc: local_addr(&misc)?,
        api: local_addr(&api)?,
        ui: local_addr(&ui)?,
    };

    let stop = CancellationToken::new();
    let mut services: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let legacy_options = legacy_shim::Options {
        db_path: Some(data.join("legacy-shim.db")),
        ..legacy_shim::Options::default()
    };
    services.spawn(named(
        "legacy-shim",
        legacy_shim::serve(legacy, legacy_options, stop.clone().cancelled_owned()),
    ));

    let pictures = PictureStore::open(&data.join("pictures"))?;
    let misc_options = extracted::misc::Options {
        vary: true,
        defect: !args.fixed,
        pictures: Some(pictures.clone()),
    };
    // The misc catalogue (feeds, CSV export) follows the monolith's orders through events.
    let catalogue = extracted::misc::Catalogue::seed(true);
    services.spawn(named(
        "the misc service",
        extracted::misc::serve_live(
            misc,
            misc_options,
            Some(catalogue.clone()),
            stop.clone().cancelled_owned(),
        ),
    ));

    let (bus, base_dir) = strangler::events::consume::bus_from_config_file(&config)
        .with_context(|| format!("cannot use the event bus of {}", config.display()))?;
    // The catalogue lives in memory, so each start reads the kept log from its beginning:
    // a consumer name of its own per run rebuilds it from every order the log still holds.
    let order_consumer = orders::Settings {
        bus: bus.clone(),
        base_dir: base_dir.clone(),
        consumer: format!("{}-{}", orders::CONSUMER_NAME, std::process::id()),
        legacy_url: format!("http://{}", addresses.legacy),
    };
    services.spawn(named(
        "the misc order consumer",
        orders::run(order_consumer, catalogue, stop.clone().cancelled_owned()),
    ));
    let worker = thumbnails::Settings {
        bus,
        base_dir,
        legacy_url: format!("http://{}", addresses.legacy),
        consumer: thumbnails::CONSUMER_NAME.to_owned(),
    };
    services.spawn(named(
        "the thumbnail worker",
        thumbnails::run(worker, pictures, stop.clone().cancelled_owned()),
    ));

    let api_options = api::Options {
        vary: true,
        database: Database::Sqlite(Some(data.join("api-service.db"))),
        events: Some(EventSource {
            config: config.clone(),
            consumer: api::CONSUMER_NAME.to_owned(),
            legacy_url: format!("http://{}", addresses.legacy),
        }),
    };
    services.spawn(named(
        "the API service",
        api::serve_with(api, api_options, stop.clone().cancelled_owned()),
    ));

    let ui_options = extracted::ui::Options::new(format!("http://{}", addresses.proxy));
    services.spawn(named(
        "the UI front",
        extracted::ui::serve(ui, ui_options, stop.clone().cancelled_owned()),
    ));

    print_banner(&addresses, &config, args.fixed);

    let failed = tokio::select! {
        () = strangler::cli::shutdown_signal() => None,
        Some(ended) = services.join_next() => Some(ended),
    };
    println!("stopping…");
    let token = proxy.shutdown_token();
    token.cancel();
    proxy.wait().await;
    stop.cancel();
    let mut outcome = match failed {
        Some(ended) => Err(ended_early(ended)),
        None => Ok(()),
    };
    while let Some(ended) = services.join_next().await {
        if let Err(e) = flatten(ended) {
            tracing::error!(error = %format!("{e:#}"), "a demo service failed while stopping");
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    }
    outcome
}

/// Binds `address` for `what`, saying what to do when the port is taken.
async fn bind(address: &str, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address} for {what}; is something else (an earlier demo?) running there?")
    })
}

fn local_addr(listener: &TcpListener) -> anyhow::Result<SocketAddr> {
    listener
        .local_addr()
        .context("cannot read a bound listener's address")
}

/// A service's future whose error says which service it was.
async fn named<E>(
    what: &'static str,
    service: impl Future<Output = Result<(), E>>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    service.await.with_context(|| format!("{what} failed"))
}

/// A service ended before Ctrl-C: always an error, even when it returned `Ok`.
fn ended_early(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match flatten(ended) {
        Ok(()) => anyhow::anyhow!("a demo service stopped on its own; stopping the demo"),
        Err(e) => e.context("stopping the demo"),
    }
}

fn flatten(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    ended.context("a demo service's task panicked or was cancelled")?
}

fn print_banner(at: &Addresses, config: &Path, fixed: bool) {
    let config = config.display();
    let version = if fixed {
        "fixed"
    } else {
        "first version, with the currency defect"
    };
    println!();
    println!("  strangler demo is up");
    println!("  the shop through the proxy   http://{}/", at.proxy);
    println!("  dashboard (admin)            http://{}/", at.admin);
    println!(
        "  admin API                    http://{}/admin/routes",
        at.admin
    );
    println!("  legacy-shim, the monolith    http://{}/", at.legacy);
    println!(
        "  misc service ({version})   http://{}/misc/health",
        at.misc
    );
    println!(
        "  API service (SQLite, consuming the shop.* events)   http://{}/api/products",
        at.api
    );
    println!(
        "  UI front (its data from the API through the proxy)  http://{}/",
        at.ui
    );
    println!("  thumbnail worker             consuming shop.image.uploaded into data/pictures");
    println!(
        "  routes file                  {config}  (edit a mode, or `strangler flip`: it applies live)"
    );
    println!(
        "  events and data              data/events (the bus), data/diffs (captured regressions)"
    );
    println!();
    println!("  next, in another terminal:");
    let cli = "cargo run --release -q -p strangler --";
    println!(
        "    cargo run --release -- traffic            # drive shop traffic through the proxy"
    );
    println!("    {cli} routes                   # every route and its mode");
    println!("    {cli} diffs --route currency   # what the shadow diff found");
    println!("    {cli} events tail --limit 10   # the events on the bus");
    println!();
    println!("  Ctrl-C stops everything.");
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
