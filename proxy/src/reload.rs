//! Building a runnable snapshot from `routes.toml`, and replacing it while traffic flows.
//!
//! A reload is load → validate → compile → swap. Any failure keeps the running snapshot and
//! reports every problem; in-flight requests finish on the snapshot they started with.
//! Triggers: a change in the config file's folder (so an editor's write-to-temp-and-rename
//! counts), SIGHUP, and the admin API. Triggers are coalesced: a burst of file events gives
//! one reload of the final content. An applied reload publishes `config.reloaded` and a
//! `route.changed` per route whose mode changed; a refused one publishes `config.rejected`.
//! In cluster mode every load gets the fleet's route modes laid over the file's, and a change
//! seen in the fleet's bucket is one more trigger of this same path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::cluster::Fleet;
use crate::config::{self, Config, Diagnostics};
use crate::events::exchange::{self, Plans};
use crate::forward::Upstreams;
use crate::proxy::Shared;
use crate::routing::Table;

/// Everything a request needs, compiled from one version of the configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated configuration.
    pub config: Config,
    /// The compiled routes.
    pub table: Table,
    /// The upstreams with their pools.
    pub upstreams: Upstreams,
    /// What each route's exchanges publish (exchange events, emit rules).
    pub events: Plans,
    /// 1 for the first snapshot, +1 per successful reload.
    pub generation: u64,
}

impl Snapshot {
    /// Compiles `config`, reusing the upstream pools of `previous` where unchanged.
    pub fn build(config: Config, previous: Option<&Snapshot>) -> Result<Self, Diagnostics> {
        let table = Table::compile(config.raw());
        let upstreams = Upstreams::build(config.raw(), previous.map(|p| &p.upstreams));
        let events = Plans::compile(config.raw(), previous.map(|p| &p.events));
        match (table, upstreams, events) {
            (Ok(table), Ok(upstreams), Ok(events)) => Ok(Self {
                config,
                table,
                upstreams,
                events,
                generation: previous.map_or(1, |p| p.generation + 1),
            }),
            (table, upstreams, events) => {
                let mut diags = table.err().unwrap_or_default();
                diags.extend(upstreams.err().unwrap_or_default());
                diags.extend(events.err().unwrap_or_default());
                Err(config.locate(diags))
            }
        }
    }

    /// The request body limit of routes that set none.
    pub fn default_body_limit(&self) -> u64 {
        self.config.raw().listen.max_request_body.bytes()
    }
}

/// Loads, validates and compiles a file: what `strangler check` and every reload do.
pub fn load_snapshot(path: &Path, previous: Option<&Snapshot>) -> Result<Snapshot, Diagnostics> {
    Snapshot::build(config::load(path)?, previous)
}

/// What caused a reload (for logs and, later, events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The file changed on disk.
    File,
    /// SIGHUP.
    Signal,
    /// An admin API call.
    Admin,
    /// A mode changed in the fleet's bucket (cluster mode).
    Cluster,
}

impl Trigger {
    /// Name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Signal => "signal",
            Self::Admin => "admin",
            Self::Cluster => "cluster",
        }
    }
}

/// The outcome of one reload.
#[derive(Debug)]
pub enum Outcome {
    /// A new snapshot is live.
    Applied {
        /// Its generation.
        generation: u64,
    },
    /// The content did not change.
    Unchanged,
    /// The file is invalid; the running snapshot stays.
    Rejected(Diagnostics),
}

/// Reloads the proxy's snapshot from its file, one reload at a time.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    shared: Arc<Shared>,
    /// Serializes reloads, so two triggers never race to install.
    lock: Mutex<()>,
    /// Cluster mode: the fleet whose modes override the file's.
    fleet: Option<Arc<Fleet>>,
    applied: AtomicU64,
    rejected: AtomicU64,
}

impl Reloader {
    /// A reloader for `path` installing into `shared`.
    pub fn new(path: PathBuf, shared: Arc<Shared>) -> Self {
        Self {
            path,
            shared,
            lock: Mutex::new(()),
            fleet: None,
            applied: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Cluster mode: every reload lays `fleet`'s modes over the file's.
    pub fn with_fleet(mut self, fleet: Arc<Fleet>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// The fleet, in cluster mode.
    pub fn fleet(&self) -> Option<&Arc<Fleet>> {
        self.fleet.as_ref()
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot()
    }

    /// The file reloads read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads now.
    pub async fn reload(&self, trigger: Trigger) -> Outcome {
        let _serial = self.lock.lock().await;
        let current = self.shared.snapshot();
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path)).await;
        let config = match loaded {
            Ok(Ok(config)) => config,
            Ok(Err(diags)) => return self.reject(trigger, diags),
            Err(join) => {
                return self.reject(
                    trigger,
                    Diagnostics(vec![config::Diagnostic::new(
                        "",
                        format!("reload task failed: {join}"),
                    )]),
                );
            }
        };
        let config = match &self.fleet {
            Some(fleet) => match fleet.overlay(config) {
                Ok(config) => config,
                Err(diags) => return self.reject(trigger, diags),
            },
            None => config,
        };
        if config.raw() == current.config.raw() {
            tracing::debug!(trigger = trigger.as_str(), "configuration unchanged");
            return Outcome::Unchanged;
        }
        if config.raw().listen.address != current.config.raw().listen.address
            || config.raw().admin.address != current.config.raw().admin.address
        {
            tracing::warn!(
                "listen or admin address changed; that needs a restart, the rest is applied now"
            );
        }
        match Snapshot::build(config, Some(&current)) {
            Ok(snapshot) => {
                let generation = snapshot.generation;
                let events = self.shared.events();
                let published = events.is_enabled().then(|| {
                    let after = snapshot.config.raw();
                    let changed = exchange::mode_changes(current.config.raw(), after);
                    let routes = after.routes.len();
                    let journal = crate::rollout::journal::recent(&self.path, 64);
                    exchange::reloaded_events(
                        generation,
                        trigger.as_str(),
                        routes,
                        changed,
                        |change| {
                            // This instance's own flips are in its journal; the fleet's in
                            // the bucket's records.
                            crate::rollout::journal::explain(&journal, &change.route, &change.to)
                                .or_else(|| {
                                    self.fleet
                                        .as_ref()
                                        .and_then(|f| f.cause(&change.route, &change.to))
                                })
                        },
                    )
                });
                self.shared.install(snapshot);
                for event in published.into_iter().flatten() {
                    events.publish(event);
                }
                self.applied.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    trigger = trigger.as_str(),
                    generation,
                    "configuration reloaded"
                );
                Outcome::Applied { generation }
            }
            Err(diags) => self.reject(trigger, diags),
        }
    }

    fn reject(&self, trigger: Trigger, diags: Diagnostics) -> Outcome {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::error!(trigger = trigger.as_str(), errors = %diags, "configuration rejected; still running the last good one");
        let events = self.shared.events();
        if let Some(event) = events
            .is_enabled()
            .then(|| exchange::rejected_event(trigger.as_str(), &diags))
            .flatten()
        {
            events.publish(event);
        }
        Outcome::Rejected(diags)
    }

    /// Reloads applied and rejected since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.applied.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }

    /// Sets up the reload triggers (a watch on the file's folder, SIGHUP) now, so a change
    /// made right after the proxy starts is not missed; [`Armed::run`] then serves them.
    pub fn arm(self: &Arc<Self>) -> Armed {
        // Bounded: one pending trigger is enough, since a reload reads the latest content.
        let (tx, rx) = mpsc::channel::<Trigger>(1);
        let watcher = match self.file_watcher(tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot watch the config file; use SIGHUP or the admin API to reload");
                None
            }
        };
        Armed {
            reloader: self.clone(),
            rx,
            _tx: tx,
            _watcher: watcher,
            hangups: Hangups::new(),
        }
    }

    fn file_watcher(
        &self,
        tx: mpsc::Sender<Trigger>,
    ) -> notify::Result<notify::RecommendedWatcher> {
        let file_name = self.path.file_name().map(|n| n.to_owned());
        let folder = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if matches!(event.kind, notify::EventKind::Access(_)) {
                    return;
                }
                let ours = event
                    .paths
                    .iter()
                    .any(|p| p.file_name() == file_name.as_deref());
                if ours {
                    // Full means a reload is already pending: it will read this change too.
                    let _ = tx.try_send(Trigger::File);
                }
            })?;
        watcher.watch(&folder, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    }
}

/// Live reload triggers of one [`Reloader`].
#[derive(Debug)]
pub struct Armed {
    reloader: Arc<Reloader>,
    rx: mpsc::Receiver<Trigger>,
    /// Keeps the channel open when the file watcher could not be set up.
    _tx: mpsc::Sender<Trigger>,
    _watcher: Option<notify::RecommendedWatcher>,
    hangups: Hangups,
}

impl Armed {
    /// Reloads on each trigger until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let trigger = tokio::select! {
                t = self.rx.recv() => match t { Some(t) => t, None => return },
                () = self.hangups.recv() => Trigger::Signal,
                () = shutdown.cancelled() => return,
            };
            // Let a burst of writes settle, then reload the final content once.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while self.rx.try_recv().is_ok() {}
            self.reloader.reload(trigger).await;
        }
    }
}

/// SIGHUP as a stream of reload requests (never fires where signals are unavailable).
#[derive(Debug)]
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn new() -> Self {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = self.signal.as_mut() {
            if signal.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await;
    }
}
