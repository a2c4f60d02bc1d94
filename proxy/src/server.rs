//! Starting and stopping a whole proxy: the client listener, the admin listener, the reload
//! watcher, the fleet's bucket watch (cluster mode) and the event publisher, as owned tasks
//! under one cancellation token (the publisher stops last, after everything that publishes).
//!
//! Everything binds before `start` returns, so a caller (a test, the demo) can use the
//! addresses at once; port 0 works for both listeners.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::cluster::{self, Fleet};
use crate::config::Diagnostics;
use crate::events::{Publisher, PublisherError};
use crate::listen::{self, Limits, TlsError};
use crate::proxy::Shared;
use crate::reload::{self, Outcome, Reloader, Trigger};
use crate::shadow::CorpusSettings;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] Diagnostics),
    /// A listener could not bind.
    #[error("cannot listen on {address} ({what}): {source}; is another process using it?")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// TLS material is unusable.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The admin API refused its settings.
    #[error("{0}")]
    Admin(#[from] admin::AdminError),
    /// The event log or spool folder is unusable.
    #[error("{0}")]
    Events(#[from] PublisherError),
}

/// A running proxy.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
    reloader: Arc<Reloader>,
}

/// Loads `path` and starts serving it.
pub async fn start(path: &Path) -> Result<Handle, StartError> {
    let path = path.to_owned();
    let loaded = tokio::task::spawn_blocking({
        let path = path.clone();
        move || reload::load_snapshot(&path, None)
    })
    .await
    .map_err(|e| {
        Diagnostics(vec![crate::config::Diagnostic::new(
            "",
            format!("loading failed: {e}"),
        )])
    })?;
    start_with(path, loaded?).await
}

async fn start_with(path: PathBuf, mut snapshot: reload::Snapshot) -> Result<Handle, StartError> {
    let raw = snapshot.config.raw().clone();
    let base_dir = snapshot.config.base_dir().to_owned();
    let bind = |what: &'static str, address: String| async move {
        TcpListener::bind(&address)
            .await
            .map_err(|source| StartError::Bind {
                what,
                address,
                source,
            })
    };
    let listener = bind("proxy", raw.listen.address.clone()).await?;
    let admin_listener = bind("admin", raw.admin.address.clone()).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        what: "proxy",
        address: raw.listen.address.clone(),
        source,
    })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            what: "admin",
            address: raw.admin.address.clone(),
            source,
        })?;
    let tls = match &raw.listen.tls {
        Some(tls) => Some(listen::load_acceptor(
            &base_dir.join(&tls.cert),
            &base_dir.join(&tls.key),
        )?),
        None => None,
    };
    // Cluster mode: the fleet's modes replace the file's before anything is served.
    let fleet = match &raw.cluster {
        Some(settings) => {
            let instance = cluster::instance_name(settings, addr.port());
            let fleet = Fleet::join(settings.clone(), instance, &snapshot.config, &path).await;
            snapshot = reload::Snapshot::build(fleet.overlay(snapshot.config)?, None)?;
            Some(fleet)
        }
        None => None,
    };
    let token = admin::Token::from_config(&raw.admin, &base_dir)?;
    admin::check_exposure(admin_addr, token.as_ref())?;

    let shutdown = CancellationToken::new();
    let events = Publisher::start(&raw.bus, &base_dir)?;
    let shared = Arc::new(Shared::new(snapshot, shutdown.clone()).with_events(events));
    if let Some(corpus) = CorpusSettings::from_config(&raw.shadow, &base_dir) {
        shared.shadows().start_corpus(corpus);
    }
    let mut reloader = Reloader::new(path, shared.clone());
    if let Some(fleet) = &fleet {
        reloader = reloader.with_fleet(fleet.clone());
    }
    let reloader = Arc::new(reloader);
    let mut tasks = JoinSet::new();
    if let Some(fleet) = fleet {
        tasks.spawn(fleet.clone().run_lease(shutdown.clone()));
        tasks.spawn(fleet.clone().run_evidence(shutdown.clone()));
        tasks.spawn(fleet.clone().run_instances(shutdown.clone()));
        tasks.spawn(fleet.run(reloader.clone(), shutdown.clone()));
    }

    let handler_shared = shared.clone();
    let handler = move |request, peer| handler_shared.clone().handle(request, peer);
    tasks.spawn(listen::serve(
        listener,
        tls,
        Limits::from(&raw.listen),
        shutdown.clone(),
        handler,
    ));
    let admin_state = admin::State::new(shared.clone(), reloader.clone(), token);
    tasks.spawn(admin::serve(admin_listener, admin_state, shutdown.clone()));
    tasks.spawn(reloader.arm().run(shutdown.clone()));
    tasks.spawn(crate::rollout::auto::run(
        shared.clone(),
        reloader.clone(),
        shutdown.clone(),
    ));
    tracing::info!(%addr, %admin_addr, routes = shared.snapshot().table.routes().len(), "strangler listening");
    Ok(Handle {
        addr,
        admin_addr,
        shutdown,
        tasks,
        shared,
        reloader,
    })
}

impl Handle {
    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The live state (snapshot, counters).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Reloads the configuration file now.
    pub async fn reload(&self) -> Outcome {
        self.reloader.reload(Trigger::Admin).await
    }

    /// A token that stops the proxy when cancelled (e.g. from a signal handler).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, drains in-flight requests (up to `listen.shutdown_grace`) and returns.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        self.wait_tasks().await;
    }

    /// Runs until the shutdown token is cancelled and everything has drained.
    pub async fn wait(mut self) {
        self.shutdown.cancelled().await;
        self.wait_tasks().await;
    }

    async fn wait_tasks(&mut self) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(e) = result {
                tracing::error!(error = %e, "a proxy task failed");
            }
        }
        self.shared.tasks().close();
        self.shared.tasks().wait().await;
        // Copies in flight end within their candidate timeout; never hold shutdown longer.
        let copies = self.shared.shadows().tasks();
        copies.close();
        if tokio::time::timeout(std::time::Duration::from_secs(5), copies.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = copies.len(),
                "abandoning shadow comparisons still in flight"
            );
        }
        // Last: the copies that just ended may have captured regressions.
        self.shared
            .shadows()
            .close_corpus(std::time::Duration::from_secs(5))
            .await;
        // Last of all: everything above may have published events; flush them to the bus or
        // the spool.
        self.shared.events().close().await;
    }
}
