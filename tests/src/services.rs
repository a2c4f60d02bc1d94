//! The extracted services (misc, API, UI front) running in this process, each on its own
//! loopback listener, for the whole-system migration test.
//!
//! A listener is bound before anything is served ([`Service::bind`]), so its address can go
//! into a routes.toml that the service itself needs (the API service reads the proxy's
//! `[bus]` from it; the UI front calls the proxy for its API) before the service starts.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A loopback listener bound for a service that is not serving yet.
pub struct Bound {
    listener: TcpListener,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Bound {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// One service serving in a task of this process until stopped.
pub struct Service {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// A folder the service keeps its files in (the misc service's picture store), removed
    /// when the service is dropped.
    scratch: Option<tempfile::TempDir>,
}

impl Service {
    /// Binds `127.0.0.1:0`; connections queue until [`Service::spawn`] serves them.
    pub async fn bind() -> Bound {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a service listener");
        let addr = listener.local_addr().expect("service address");
        Bound { listener, addr }
    }

    /// Serves `bound` with `serve(listener, shutdown)`; an error it stops with is printed
    /// under `name`.
    pub fn spawn<F, Fut, E>(name: &'static str, bound: Bound, serve: F) -> Self
    where
        F: FnOnce(TcpListener, WaitForCancellationFutureOwned) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let stop = CancellationToken::new();
        let served = serve(bound.listener, stop.clone().cancelled_owned());
        let task = tokio::spawn(async move {
            if let Err(e) = served.await {
                eprintln!("{name} stopped with an error: {e}");
            }
        });
        Self {
            addr: bound.addr,
            stop,
            task: Some(task),
            scratch: None,
        }
    }

    /// The misc service, stable (`vary = false`) and without the defect.
    pub async fn misc() -> Self {
        let options = extracted::misc::Options {
            vary: false,
            ..extracted::misc::Options::default()
        };
        Self::spawn("misc service", Self::bind().await, |listener, shutdown| {
            extracted::misc::serve_with(listener, options, shutdown)
        })
    }

    /// The misc service on `bound`, stable and without the defect, consuming the events of
    /// the `[bus]` in routes.toml `config` in two workers beside it: the order consumer
    /// (`extracted::worker::orders`, durable name `consumer`), so its feeds and CSV export
    /// follow the monolith's orders and product edits, and the thumbnail worker
    /// (`extracted::worker::thumbnails`, durable name `<consumer>-thumbs`), which copies each
    /// picture uploaded to the monolith at `legacy_url` into a picture store of its own (a
    /// temporary folder) with its thumbnails rendered ahead of time.
    pub fn misc_live(
        bound: Bound,
        config: std::path::PathBuf,
        consumer: String,
        legacy_url: String,
    ) -> Self {
        use extracted::worker::{orders, thumbnails};
        let scratch = tempfile::tempdir().expect("a folder for the picture store");
        let pictures =
            extracted::misc::PictureStore::open(scratch.path()).expect("open the picture store");
        let options = extracted::misc::Options {
            vary: false,
            pictures: Some(pictures.clone()),
            ..extracted::misc::Options::default()
        };
        let mut service = Self::spawn(
            "misc service",
            bound,
            move |listener, shutdown| async move {
                let (bus, base_dir) = strangler::events::consume::bus_from_config_file(&config)
                    .map_err(|e| format!("the bus of {}: {e}", config.display()))?;
                let catalogue = extracted::misc::Catalogue::seed(false);
                let order_settings = orders::Settings {
                    bus: bus.clone(),
                    base_dir: base_dir.clone(),
                    consumer: consumer.clone(),
                    legacy_url: legacy_url.clone(),
                };
                let thumbnail_settings = thumbnails::Settings {
                    bus,
                    base_dir,
                    legacy_url,
                    consumer: format!("{consumer}-thumbs"),
                };
                let serving = extracted::misc::serve_live(
                    listener,
                    options,
                    Some(catalogue.clone()),
                    shutdown,
                );
                // The workers run as long as the service serves; they end only on an error.
                let consuming = orders::run(order_settings, catalogue, std::future::pending());
                let rendering =
                    thumbnails::run(thumbnail_settings, pictures, std::future::pending());
                tokio::select! {
                    served = serving => served.map_err(|e| e.to_string()),
                    consumed = consuming => consumed.map_err(|e| e.to_string()),
                    rendered = rendering => rendered.map_err(|e| e.to_string()),
                }
            },
        );
        service.scratch = Some(scratch);
        service
    }

    /// The folder of the misc service's picture store ([`Service::misc_live`]), if it has one.
    pub fn pictures(&self) -> Option<&std::path::Path> {
        self.scratch.as_ref().map(tempfile::TempDir::path)
    }

    /// The API service on `bound`, stable, with a fresh in-memory SQLite database, consuming
    /// the events of the `[bus]` in routes.toml `config` as durable consumer `consumer`, and
    /// completing page-checkout orders from the monolith at `legacy_url`.
    pub fn api(
        bound: Bound,
        config: std::path::PathBuf,
        consumer: String,
        legacy_url: String,
    ) -> Self {
        let options = extracted::api::Options {
            vary: false,
            database: extracted::api::Database::default(),
            events: Some(extracted::api::EventSource {
                config,
                consumer,
                legacy_url,
            }),
        };
        Self::spawn("API service", bound, |listener, shutdown| {
            extracted::api::serve_with(listener, options, shutdown)
        })
    }

    /// The UI front on `bound`, stable, taking its data from the JSON API at `api_url`.
    pub fn ui(bound: Bound, api_url: String) -> Self {
        let options = extracted::ui::Options {
            api_url,
            vary: false,
        };
        Self::spawn("UI front", bound, |listener, shutdown| {
            extracted::ui::serve(listener, options, shutdown)
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits until it has stopped (in-flight requests finished).
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
