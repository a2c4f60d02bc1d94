//! `misc-service`: the extracted `/misc` service on its own.
//!
//! A thin shell over [`extracted::misc::serve_with`]: parse the command line, bind, serve
//! until Ctrl-C, then finish the requests in flight. With `--bus-config`, two consumers run in
//! the same process: the thumbnail worker ([`extracted::worker::thumbnails`]) fills the picture
//! store the service answers thumbnails of uploaded pictures from, and the order consumer
//! ([`extracted::worker::orders`]) applies the monolith's orders and product edits to the
//! catalogue the feeds and the CSV export answer from.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use extracted::misc::{Catalogue, PictureStore};
use extracted::worker::{orders, thumbnails};
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
    /// A strangler routes.toml: consume from its `[bus]` `shop.image.uploaded` (render the
    /// thumbnails of uploaded pictures ahead of time) and the order and product events (keep
    /// the feeds and the CSV export in step with the monolith).
    #[arg(long, value_name = "ROUTES_TOML")]
    bus_config: Option<PathBuf>,
    /// The monolith's base URL, where the worker fetches uploaded pictures and the order
    /// consumer completes page-checkout orders (`GET /api/orders/{id}`).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    legacy_url: String,
    /// The picture store's folder (default: `data/pictures` beside the routes.toml).
    #[arg(long, value_name = "DIR")]
    pictures: Option<PathBuf>,
    /// The worker's durable consumer name on the bus.
    #[arg(long, default_value = thumbnails::CONSUMER_NAME)]
    consumer: String,
    /// The order consumer's durable name on the bus. The catalogue lives in memory: a name the
    /// bus has not seen starts at the oldest event kept, so a restart shows earlier orders.
    #[arg(long, default_value = orders::CONSUMER_NAME)]
    orders_consumer: String,
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
    let (stop, _) = tokio::sync::watch::channel(false);
    let stopped = |mut watch: tokio::sync::watch::Receiver<bool>| async move {
        // An error means the sender is gone: stop as well.
        let _ = watch.wait_for(|stop| *stop).await;
    };
    let mut options = extracted::misc::Options {
        vary: !args.stable,
        defect: args.defect,
        pictures: None,
    };
    let mut worker = None;
    let mut catalogue = None;
    let mut orders_task = None;
    if let Some(config) = &args.bus_config {
        let (bus, base_dir) = strangler::events::consume::bus_from_config_file(config)
            .with_context(|| format!("cannot use the event bus of {}", config.display()))?;
        let folder = args
            .pictures
            .clone()
            .unwrap_or_else(|| base_dir.join("data/pictures"));
        let store = PictureStore::open(&folder)?;
        options.pictures = Some(store.clone());
        let live = Catalogue::seed(!args.stable);
        catalogue = Some(live.clone());
        let order_settings = orders::Settings {
            bus: bus.clone(),
            base_dir: base_dir.clone(),
            consumer: args.orders_consumer.clone(),
            legacy_url: args.legacy_url.clone(),
        };
        tracing::info!(consumer = %args.orders_consumer, "order consumer starting");
        orders_task = Some(tokio::spawn(orders::run(
            order_settings,
            live,
            stopped(stop.subscribe()),
        )));
        let settings = thumbnails::Settings {
            bus,
            base_dir,
            legacy_url: args.legacy_url.clone(),
            consumer: args.consumer.clone(),
        };
        tracing::info!(pictures = %folder.display(), legacy = %args.legacy_url, "thumbnail worker starting");
        worker = Some(tokio::spawn(thumbnails::run(
            settings,
            store,
            stopped(stop.subscribe()),
        )));
    }
    let serving =
        extracted::misc::serve_live(listener, options, catalogue, stopped(stop.subscribe()));
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result.context("serving the misc service failed")?,
        signal = tokio::signal::ctrl_c() => {
            if let Err(err) = signal {
                tracing::error!(error = %err, "cannot listen for Ctrl-C; stopping");
            }
            stop.send_replace(true);
            serving.await.context("serving the misc service failed")?;
        }
    }
    stop.send_replace(true);
    if let Some(worker) = worker {
        worker
            .await
            .context("the thumbnail worker stopped abnormally")?
            .context("the thumbnail worker failed")?;
    }
    if let Some(task) = orders_task {
        task.await
            .context("the order consumer stopped abnormally")?
            .context("the order consumer failed")?;
    }
    tracing::info!("misc service stopped");
    Ok(())
}
