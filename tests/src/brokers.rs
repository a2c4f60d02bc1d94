//! Real brokers for the bus tests: the shared NATS (JetStream) and Redis servers on their
//! default loopback ports, and broker processes of a test's own (on a free port, with their
//! own store folder) that a test can kill and restart.
//!
//! In CI (`CI` set) a missing server or binary fails the test; elsewhere the test is skipped
//! with a note on stderr. Tests sharing a server use [`unique`] stream, subject and key names
//! and delete what they made.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strangler::config::{BusConfig, BusKind};

use crate::server_process::ServerProcess;

/// Where the shared NATS server with JetStream listens.
pub const SHARED_NATS: &str = "127.0.0.1:4222";
/// Where the shared Redis server listens.
pub const SHARED_REDIS: &str = "127.0.0.1:6379";

/// `nats://127.0.0.1:4222` when the shared server is up; `None` (skip) without it.
pub fn shared_nats() -> Option<String> {
    shared(SHARED_NATS, "a NATS server with JetStream").map(|addr| format!("nats://{addr}"))
}

/// `redis://127.0.0.1:6379` when the shared server is up; `None` (skip) without it.
pub fn shared_redis() -> Option<String> {
    shared(SHARED_REDIS, "a Redis server").map(|addr| format!("redis://{addr}"))
}

fn shared(addr: &str, what: &str) -> Option<String> {
    let parsed: SocketAddr = addr.parse().expect("a socket address");
    if TcpStream::connect_timeout(&parsed, Duration::from_secs(1)).is_ok() {
        return Some(addr.to_owned());
    }
    missing(&format!("{what} at {addr}"));
    None
}

/// Fails in CI, notes the skip elsewhere.
fn missing(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs {what} (this test never skips there)"
    );
    eprintln!("note: no {what}; test skipped");
}

/// A name no other test (in this run or a concurrent one) uses, made of letters, digits and `_`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `[bus]` for NATS at `url`, with a stream and subject prefix of its own.
pub fn nats_bus(url: &str) -> BusConfig {
    let name = unique("t");
    BusConfig {
        kind: BusKind::Nats,
        url: Some(url.to_owned()),
        stream: name.to_uppercase(),
        subject_prefix: name,
        ..BusConfig::default()
    }
}

/// `[bus]` for Redis at `url`, with a key prefix of its own.
pub fn redis_bus(url: &str) -> BusConfig {
    BusConfig {
        kind: BusKind::Redis,
        url: Some(url.to_owned()),
        key_prefix: unique("t"),
        ..BusConfig::default()
    }
}

/// Deletes the JetStream stream `bus` names.
pub async fn delete_nats_stream(bus: &BusConfig) {
    let url = bus.url.as_deref().expect("a nats url");
    let client = async_nats::connect(url).await.expect("connect to nats");
    async_nats::jetstream::new(client)
        .delete_stream(&bus.stream)
        .await
        .expect("delete the test stream");
}

/// Deletes every Redis key under the prefix `bus` names.
pub async fn delete_redis_keys(bus: &BusConfig) {
    let url = bus.url.as_deref().expect("a redis url");
    let client = redis::Client::open(url).expect("a redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", bus.key_prefix))
        .query_async(&mut conn)
        .await
        .expect("list the test keys");
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<i64>(&mut conn)
            .await
            .expect("delete the test keys");
    }
}

/// Which broker a [`BrokerProcess`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// `nats-server -js` with a file store.
    Nats,
    /// `redis-server` with an fsync-always append-only file, so what it acked survives.
    Redis,
}

/// A broker process of the test's own on a free loopback port, with its store in a temp
/// folder that outlives kills and restarts. Stopped (SIGKILL by PID) on drop.
pub struct BrokerProcess {
    /// Which broker.
    pub broker: Broker,
    /// The process, its port and its store folder.
    server: ServerProcess,
}

impl BrokerProcess {
    /// Starts `broker`, or returns `None` (skip) when its binary is not installed.
    pub fn start(broker: Broker) -> Option<Self> {
        let binary = match broker {
            Broker::Nats => "nats-server",
            Broker::Redis => "redis-server",
        };
        if Command::new(binary)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            missing(&format!("`{binary}` binary"));
            return None;
        }
        let mut process = Self {
            broker,
            server: ServerProcess::on_free_port(binary),
        };
        process.restart();
        Some(process)
    }

    /// `nats://127.0.0.1:PORT` or `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.broker {
            Broker::Nats => format!("nats://127.0.0.1:{}", self.server.port()),
            Broker::Redis => format!("redis://127.0.0.1:{}", self.server.port()),
        }
    }

    /// Kills it with SIGKILL (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts it (again) on the same port and store; returns once it accepts connections.
    pub fn restart(&mut self) {
        let store = self.server.dir().join("store");
        std::fs::create_dir_all(&store).expect("store folder");
        let port = self.server.port().to_string();
        let command = match self.broker {
            Broker::Nats => {
                let mut c = Command::new("nats-server");
                c.args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd"])
                    .arg(&store);
                c
            }
            Broker::Redis => {
                let mut c = Command::new("redis-server");
                c.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "yes", "--appendfsync", "always"])
                    .arg("--dir")
                    .arg(&store);
                c
            }
        };
        self.server.spawn(command);
    }

    /// The broker's own output, for a failing test's message.
    pub fn log(&self) -> String {
        self.server.log()
    }
}
