//! Crash: the real `strangler` binary is killed with SIGKILL while its broker is down and
//! every exchange event waits in the disk spool. Restarted on the same configuration once
//! the broker is back, it sends the spool first: a subscriber receives every spooled
//! exchange event, each id once after dedup. One test per broker, each with a broker
//! process of its own on a free port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use strangler::config::BusConfig;
use strangler::events::sink::nats::NatsSink;
use strangler::events::sink::redis::RedisSink;
use strangler::events::sink::{ReadFrom, SinkError, log};
use strangler::events::{Event, types};
use system_tests::brokers::{self, Broker, BrokerProcess};
use system_tests::running::Running;
use system_tests::wait::eventually;
use system_tests::{named, raw_client, routes_toml};

/// Client requests sent before the kill, one exchange event each.
const REQUESTS: usize = 200;
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
    let sent = first.requests(&client, "/misc/crash", REQUESTS).await;
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
