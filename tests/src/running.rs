//! A `strangler run` process of the test's own, for tests that signal or SIGKILL the real
//! binary (shutdown, the bus crash tests): started on a routes.toml, its addresses read from
//! its first line, its stderr kept beside the config, its `/admin/events/stats` polled.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::strangler_bin;
use crate::wait::eventually;

/// How long the binary may take to print its addresses.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Generous bound for a stats condition to come true.
const PHASE: Duration = Duration::from_secs(60);

/// A `strangler run` process, killed with SIGKILL (by its PID) if still running on drop.
pub struct Running {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    /// Its stderr, in the config's folder.
    stderr: PathBuf,
    /// The folder of a config written by [`Running::start_with`], removed on drop.
    folder: Option<tempfile::TempDir>,
}

impl Running {
    /// Runs `strangler run --config CONFIG`; returns once it printed its addresses (it binds
    /// before printing).
    pub fn start(config: &Path) -> Self {
        Self::start_logging(config, "info")
    }

    /// [`Running::start`] with `RUST_LOG=log` (e.g. `"debug"`).
    pub fn start_logging(config: &Path, log: &str) -> Self {
        let stderr = config.with_file_name("stderr.log");
        // Appended to: a restarted process on the same config keeps the first one's log.
        let output = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&stderr)
            .unwrap();
        let mut child = Command::new(strangler_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(output)
            .spawn()
            .expect("spawn strangler run");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::sync_channel(16);
        // Reads stdout to its end (the process's exit), so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.try_send(line);
            }
        });
        let line = lines.recv_timeout(START_DEADLINE).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&stderr).unwrap_or_default();
            panic!("strangler printed no address ({e}); stderr:\n{log}")
        });
        let after = |marker: &str| -> SocketAddr {
            line.split_once(marker)
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        };
        Self {
            addr: after("proxy on http://"),
            admin: after("admin on http://"),
            child,
            stderr,
            folder: None,
        }
    }

    /// Writes `config` as routes.toml in a folder of its own and runs it.
    pub fn start_with(config: &str) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("routes.toml");
        std::fs::write(&path, config).unwrap();
        let mut running = Self::start(&path);
        running.folder = Some(folder);
        running
    }

    /// The proxy's client listener, as the process printed it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener, as the process printed it.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// `http://` and the client listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `n` GETs of `path`, each with its own request id (its events' correlation id);
    /// every one must be answered 200. Returns the ids.
    pub async fn requests(&self, client: &reqwest::Client, path: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("crash-{i}");
            let response = client
                .get(format!("http://{}{path}", self.addr))
                .header("x-request-id", &id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {id} failed: {e}"));
            assert_eq!(response.status(), 200, "request {id}");
            response.bytes().await.unwrap();
            ids.push(id);
        }
        ids
    }

    /// Polls `/admin/events/stats` until `done` holds; returns those stats.
    pub async fn stats_until(
        &self,
        client: &reqwest::Client,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let url = format!("http://{}/admin/events/stats", self.admin);
        eventually(what, PHASE, || async {
            let stats: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
            done(&stats).then_some(stats)
        })
        .await
    }

    /// Sends `signal` (`"TERM"`, `"HUP"`, …) by PID, with `kill(1)`: this workspace forbids
    /// `unsafe`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -{signal} {} failed",
            self.child.id()
        );
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit, up to `deadline`.
    pub async fn exited(&mut self, deadline: Duration) -> ExitStatus {
        let child = &mut self.child;
        eventually("strangler to exit", deadline, || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await
    }

    /// SIGKILL by PID (no flush, no clean shutdown), then reaps it.
    pub fn kill_9(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 {} failed", self.child.id());
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
