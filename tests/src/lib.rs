//! Test support for whole-system tests: real servers on 127.0.0.1 port 0, built the way
//! users run them (STYLE.md rule 6). Nothing here sleeps to wait for readiness: every server
//! is bound before its constructor returns.
//!
//! - [`Legacy`]: legacy-shim in-process.
//! - [`brokers`]: the shared NATS and Redis servers, and broker processes a test can kill.
//! - [`Proxy`]: strangler in-process from a routes.toml written to a temp folder.
//! - [`fake`]: misbehaving upstreams (hanging, closing mid-body, resetting, failing, recording).
//! - [`candidate`]: stand-ins for an extracted service in shadow tests (recording whole
//!   requests, answering when told; relaying to legacy-shim with one deliberate bug).
//! - [`services`]: the extracted services (misc, API, UI front) in-process, for the migration.
//! - [`named`]: a well-behaved upstream answering its own name, counting what reached it.
//! - [`findings`]: shadow findings from the admin API (`/admin/shadow`, `/admin/diffs`).
//! - [`wait`]: polling a condition with a deadline; the admin API's reload state.
//! - [`exchange`]: exact HTTP exchanges (h1/h2, clear/TLS), direct-vs-proxied comparison, [`exchange::Twins`].
//! - [`tls`]: a self-signed certificate made at test time, and a client trusting it.
//! - [`strangler_bin`]: the real `strangler` binary, for tests that need a process (signals).
//! - [`running`]: a `strangler run` process a test can SIGKILL, and its event stats.
//! - [`tansu`]: a Kafka-protocol broker (Tansu) of the test's own, killable and restartable.

// Test support: a fixture that cannot start should fail the test at once, with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod brokers;
pub mod candidate;
pub mod exchange;
pub mod fake;
pub mod findings;
pub mod named;
pub mod raw_upstream;
pub mod running;
pub mod server_process;
pub mod services;
pub mod tansu;
pub mod tls;
pub mod wait;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// legacy-shim running in this process on an ephemeral port.
pub struct Legacy {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Legacy {
    /// Starts legacy-shim with `options`.
    pub async fn start(options: legacy_shim::Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind legacy-shim");
        let addr = listener.local_addr().expect("legacy-shim address");
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = legacy_shim::serve(listener, options, shutdown).await {
                eprintln!("legacy-shim stopped with an error: {e}");
            }
        });
        Self {
            addr,
            stop,
            task: Some(task),
        }
    }

    /// Starts legacy-shim with stable (non-varying) timestamps and ids.
    pub async fn stable() -> Self {
        Self::start(legacy_shim::Options {
            vary: false,
            ..legacy_shim::Options::default()
        })
        .await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits until it has stopped.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Legacy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// strangler running in this process, configured from a file in its own temp folder.
pub struct Proxy {
    /// The running proxy.
    pub handle: strangler::server::Handle,
    /// The folder holding routes.toml (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Proxy {
    /// Writes `routes_toml` to a temp folder and starts the proxy on it. The file should use
    /// `127.0.0.1:0` for `[listen]` and `[admin]`.
    pub async fn start(routes_toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, routes_toml).expect("write routes.toml");
        let handle = strangler::server::start(&path)
            .await
            .unwrap_or_else(|e| panic!("proxy did not start: {e}"));
        Self { handle, dir }
    }

    /// Like [`Proxy::start`], first writing `files` (name, contents) beside routes.toml, for
    /// settings that name files relative to it (such as `[listen.tls]`).
    pub async fn start_with_files(routes_toml: &str, files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents)
                .expect("write a file beside routes.toml");
        }
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, routes_toml).expect("write routes.toml");
        let handle = strangler::server::start(&path)
            .await
            .unwrap_or_else(|e| panic!("proxy did not start: {e}"));
        Self { handle, dir }
    }

    /// `http://127.0.0.1:PORT` of the client listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.handle.addr())
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.handle.admin_addr())
    }

    /// The routes.toml path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("routes.toml")
    }

    /// Stops it, draining in-flight requests.
    pub async fn stop(self) {
        self.handle.shutdown().await;
    }
}

/// A routes.toml with ephemeral listeners, `default_upstream = "legacy"` at `legacy`, and
/// `extra` appended (more upstreams and routes).
pub fn routes_toml(legacy: &str, extra: &str) -> String {
    format!(
        r#"default_upstream = "legacy"

[listen]
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"

[upstreams.legacy]
url = "{legacy}"

{extra}
"#
    )
}

/// Builds (once per test process) and returns the release-profile-independent `strangler`
/// binary of this workspace.
pub fn strangler_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let run = escargot::CargoBuild::new()
            .package("strangler")
            .bin("strangler")
            .current_release()
            .current_target()
            .manifest_path(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("Cargo.toml"),
            )
            .run()
            .expect("build the strangler binary");
        run.path().to_owned()
    })
}

/// A reqwest client that never pools across tests and does not follow redirects or
/// decompress, so tests see exactly what the server sent.
pub fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .build()
        .expect("reqwest client")
}
