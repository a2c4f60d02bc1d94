//! A Kafka-protocol broker of the test's own: Tansu (`tansu broker`, installed by `.ci/run`
//! with `cargo install tansu --locked --features dynostore --version 0.6.0`, never from a
//! test) on a free loopback port with in-memory storage. A test can kill it and start it
//! again on the same port; memory storage means a restarted broker starts empty (no topics,
//! no committed offsets), which is what a sink must survive.
//!
//! In CI (`CI` set) a missing `tansu` binary fails the test; elsewhere the test is skipped
//! with a note on stderr.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strangler::config::{BusConfig, BusKind};

use crate::brokers::unique;

/// How long a started or restarted broker may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A Tansu broker process on 127.0.0.1, stopped (SIGKILL by PID) on drop.
pub struct Tansu {
    /// Its port on 127.0.0.1 (the same after a restart).
    pub port: u16,
    /// The binary that runs.
    binary: PathBuf,
    /// Its log, in a temp folder.
    dir: tempfile::TempDir,
    /// The running process, `None` while stopped.
    child: Option<Child>,
}

impl Tansu {
    /// Starts a broker on a free port and waits until it accepts connections; `None` (skip)
    /// when `tansu` is not installed, outside CI.
    pub fn start() -> Option<Self> {
        let mut tansu = Self::stopped()?;
        tansu.restart();
        Some(tansu)
    }

    /// A broker on a free port that is not running yet (start it with [`Tansu::restart`]),
    /// for tests where the broker comes up after its clients.
    pub fn stopped() -> Option<Self> {
        let binary = binary()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Some(Self {
            port,
            binary,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        })
    }

    /// `127.0.0.1:PORT`, for `[bus] brokers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -9 {} failed", child.id());
            child.wait().expect("reap tansu");
        }
    }

    /// Starts it (again) on the same port, empty; returns once it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("tansu log");
        let err = log.try_clone().expect("tansu log");
        let child = Command::new(&self.binary)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        self.wait_ready();
    }

    /// The broker's own output, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("tansu.log")
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_WITHIN;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("tansu exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {addr}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// `[bus]` for Kafka at `brokers`, with a topic of its own.
pub fn kafka_bus(brokers: &str) -> BusConfig {
    BusConfig {
        kind: BusKind::Kafka,
        brokers: Some(brokers.to_owned()),
        topic: unique("t"),
        ..BusConfig::default()
    }
}

/// The `tansu` binary: on the PATH, or in `~/.cargo/bin` where `.ci/run` installs it.
fn binary() -> Option<PathBuf> {
    let answers = |path: &PathBuf| {
        Command::new(path)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut candidates = vec![PathBuf::from("tansu")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/tansu"));
    }
    if let Some(found) = candidates.into_iter().find(answers) {
        return Some(found);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs the `tansu` binary (.ci/run installs it; this test never skips there)"
    );
    eprintln!(
        "note: no `tansu` binary (cargo install tansu --locked --features dynostore --version 0.6.0); test skipped"
    );
    None
}
