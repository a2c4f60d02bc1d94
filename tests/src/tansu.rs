//! A Kafka-protocol broker of the test's own: Tansu (`tansu broker`, installed by `.ci/run`
//! with `cargo install tansu --locked --features dynostore --version 0.6.0`, never from a
//! test) on a free loopback port with in-memory storage. A test can kill it and start it
//! again on the same port; memory storage means a restarted broker starts empty (no topics,
//! no committed offsets), which is what a sink must survive.
//!
//! In CI (`CI` set) a missing `tansu` binary fails the test; elsewhere the test is skipped
//! with a note on stderr.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use strangler::config::{BusConfig, BusKind};

use crate::brokers::unique;
use crate::server_process::ServerProcess;

/// A Tansu broker process on 127.0.0.1, stopped (SIGKILL by PID) on drop.
pub struct Tansu {
    /// The binary that runs.
    binary: PathBuf,
    /// The process, its port (the same after a restart) and its log.
    server: ServerProcess,
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
        Some(Self {
            binary,
            server: ServerProcess::on_free_port("tansu"),
        })
    }

    /// `127.0.0.1:PORT`, for `[bus] brokers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.server.port())
    }

    /// Kills it with SIGKILL (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts it (again) on the same port, empty; returns once it accepts connections.
    pub fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.server.port());
        let mut command = Command::new(&self.binary);
        command
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn");
        self.server.spawn(command);
    }

    /// The broker's own output, for a failing test's message.
    pub fn log(&self) -> String {
        self.server.log()
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
