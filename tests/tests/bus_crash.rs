//! Crash: the real `strangler` binary is killed with SIGKILL while its broker is down and
//! every exchange event waits in the disk spool. Restarted on the same configuration once
//! the broker is back, it sends the spool first: a subscriber receives every spooled
//! exchange event, each id once after dedup. One test per broker, each with a broker
//! process of its own on a free port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::Value;
use strangler::config::BusConfig;
use strangler::events::sink::nats::NatsSink;
use strangler::events::sink::redis::RedisSink;
use strangler::events::sink::{ReadFrom, SinkError, log};
use strangler::events::{Event, types};
use system_tests::brokers::{self, Broker, BrokerProcess};
use system_tests::wait::eventually;
use system_tests::{named, raw_client, routes_toml, strangler_bin};

/// Client requests sent before the kill, one exchange event each.
const REQUESTS: usize = 200;
/// How long the binary may take to print its addresses.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Generous bound for each phase (spooling, delivery after the restart).
const PHASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_gets_every_event_spooled_before_a_kill_9() {
    crash(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_gets_every_event_spooled_before_a_kill_9() {
    crash(Broker::Redis).await;
}

async fn crash(broker: Broker) {
    let Some(mut process) = BrokerProcess::start(broker) else {
        return;
    };
    // The broker is down from the proxy's start on: everything goes to the spool.
    tokio::task::block_in_place(|| process.kill());
    let legacy = named::start("L").await;
    let bus = match broker {
        Broker::Nats => brokers::nats_bus(&process.url()),
        Broker::Redis => brokers::redis_bus(&process.url()),
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes_toml(&legacy.url(), &bus_toml(&bus))).unwrap();
    let client = raw_client();

    let mut first = Running::start(&config);
    let sent = first.requests(&client, REQUESTS).await;
    let stats = first
        .stats_until(&client, "every event spooled", |s| {
            s["spool_pending"].as_u64() >= Some(REQUESTS as u64)
        })
        .await;
    assert_eq!(stats["published"], 0, "{stats}");
    assert_eq!(stats["circuit"], "open", "{stats}");
    first.kill_9();

    let spooled: Vec<Event> = log::read(&dir.path().join("spool"), ReadFrom::Start, 100_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == types::EXCHANGE_SEEN)
        .collect();
    let mut correlations: Vec<&str> = spooled.iter().map(|e| e.correlationid.as_str()).collect();
    correlations.sort_unstable();
    let mut want_correlations: Vec<&str> = sent.iter().map(String::as_str).collect();
    want_correlations.sort_unstable();
    assert_eq!(
        correlations, want_correlations,
        "one spooled exchange event per request"
    );
    let want: HashSet<String> = spooled.iter().map(|e| e.id.clone()).collect();
    assert_eq!(want.len(), REQUESTS, "every event has its own id");

    tokio::task::block_in_place(|| process.restart());
    let second = Running::start(&config);
    let delivered = match broker {
        Broker::Nats => {
            // The stream exists once the restarted proxy has connected.
            let subscription = eventually("a JetStream subscription", PHASE, || async {
                NatsSink::subscribe(&bus, "crash", None).await.ok()
            })
            .await;
            receive(subscription, &want, |ack| ack.ack()).await
        }
        Broker::Redis => {
            let subscription = RedisSink::subscribe(&bus, "crash", "c1", &[types::EXCHANGE_SEEN])
                .await
                .unwrap();
            receive(subscription, &want, |ack| ack.ack()).await
        }
    };
    let ids: HashSet<String> = delivered.iter().cloned().collect();
    assert_eq!(ids, want, "the subscriber got exactly the spooled events");
    if broker == Broker::Nats {
        // Nothing was published twice, and JetStream drops a repeated id anyway.
        assert_eq!(delivered.len(), want.len(), "an event delivered twice");
    }
    let stats = second
        .stats_until(&client, "the spool drained", |s| {
            s["spool_pending"] == 0 && s["replayed"].as_u64() >= Some(REQUESTS as u64)
        })
        .await;
    for lost in ["failed", "dropped_channel_full", "dropped_spool_full"] {
        assert_eq!(stats[lost], 0, "{stats}");
    }
    assert!(
        second
            .stderr()
            .contains("the spool holds events from an earlier run"),
        "{}",
        second.stderr()
    );
    drop(second);
    match broker {
        Broker::Nats => brokers::delete_nats_stream(&bus).await,
        Broker::Redis => brokers::delete_redis_keys(&bus).await,
    }
}

/// `[bus]` for `bus`'s broker, with the spool in `spool/` beside routes.toml.
fn bus_toml(bus: &BusConfig) -> String {
    let url = bus.url.as_deref().unwrap();
    match bus.kind {
        strangler::config::BusKind::Nats => format!(
            "[bus]\nkind = \"nats\"\nurl = \"{url}\"\nstream = \"{}\"\nsubject_prefix = \"{}\"\nspool = \"spool\"\n",
            bus.stream, bus.subject_prefix
        ),
        _ => format!(
            "[bus]\nkind = \"redis\"\nurl = \"{url}\"\nkey_prefix = \"{}\"\nspool = \"spool\"\n",
            bus.key_prefix
        ),
    }
}

/// Reads the subscription until every id of `want` came, acking each delivery; returns the
/// ids of every exchange event delivered, repeats included.
async fn receive<A, F, Fut>(
    mut subscription: impl Stream<Item = Result<(Event, A), SinkError>> + Unpin,
    want: &HashSet<String>,
    ack: F,
) -> Vec<String>
where
    F: Fn(A) -> Fut,
    Fut: Future<Output = Result<(), SinkError>>,
{
    let mut delivered = Vec::new();
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + PHASE;
    while !want.is_subset(&seen) {
        let next = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {} spooled events arrived within {PHASE:?}",
                    want.intersection(&seen).count(),
                    want.len()
                )
            })
            .expect("the subscription ended");
        let (event, handle) = match next {
            Ok(delivery) => delivery,
            // A hiccup while the proxy connects; the subscription goes on.
            Err(SinkError::Unavailable(_)) => continue,
            Err(e) => panic!("the subscription failed: {e}"),
        };
        ack(handle).await.unwrap();
        if event.kind == types::EXCHANGE_SEEN {
            seen.insert(event.id.clone());
            delivered.push(event.id);
        }
    }
    delivered
}

/// A `strangler run` process, killed with SIGKILL (by its PID) if still running on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    /// Its stderr, in the config's folder.
    stderr: PathBuf,
}

impl Running {
    /// Runs `strangler run --config CONFIG`; returns once it printed its addresses (it binds
    /// before printing).
    fn start(config: &Path) -> Self {
        let stderr = config.with_file_name("stderr.log");
        let log = std::fs::File::create(&stderr).unwrap();
        let mut child = Command::new(strangler_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
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
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `n` GETs, each with its own request id (its events' correlation id); every one
    /// must be answered 200. Returns the ids.
    async fn requests(&self, client: &reqwest::Client, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("crash-{i}");
            let response = client
                .get(format!("http://{}/misc/crash", self.addr))
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
    async fn stats_until(
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

    /// SIGKILL by PID (no flush, no clean shutdown), then reaps it.
    fn kill_9(&mut self) {
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
