//! Broker outages: a broker process of the test's own is SIGKILLed while events are being
//! published, then restarted on the same port with the same store. Every publish either
//! succeeds (then its events are stored after the restart) or fails quickly with
//! `Unavailable` (then the caller retries it once the broker is back, as the spool does); in
//! the end every event is stored and none is lost. NATS keeps its file store; Redis runs with
//! an fsync-always append-only file, so what it acked survives.
//!
//! The last test does the same through the real proxy: its publisher spools while the broker
//! is away and replays when it returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use strangler::events::sink::nats::NatsSink;
use strangler::events::sink::{ReadFrom, Sink, SinkError};
use strangler::events::{Event, types};
use system_tests::brokers::{self, Broker, BrokerProcess};
use system_tests::{Proxy, named, raw_client, routes_toml, wait};
use tokio_util::sync::CancellationToken;

/// Events per publish call.
const BATCH: usize = 50;
/// The longest a publish may take to say `Unavailable` while the broker is gone (the sinks
/// bound a send and an ack wait by 2 s each).
const FAIL_WITHIN: Duration = Duration::from_secs(5);
/// Generous bound for each phase of the test.
const PHASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn nats_loses_nothing_across_a_kill_and_restart() {
    outage(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_loses_nothing_across_a_kill_and_restart() {
    outage(Broker::Redis).await;
}

/// What the publishing task saw.
#[derive(Default)]
struct Published {
    /// Batches the broker acknowledged.
    acked: Vec<Vec<Event>>,
    /// Batches that came back `Unavailable`, to retry.
    failed: Vec<Vec<Event>>,
    /// The longest a publish took to fail.
    slowest_failure: Duration,
}

async fn outage(broker: Broker) {
    let Some(mut process) = BrokerProcess::start(broker) else {
        return;
    };
    let bus = match broker {
        Broker::Nats => brokers::nats_bus(&process.url()),
        Broker::Redis => brokers::redis_bus(&process.url()),
    };
    let sink = Arc::new(Sink::connect(&bus, Path::new(".")).await.unwrap());
    let acked = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let publisher = tokio::spawn(publish_until(
        sink.clone(),
        acked.clone(),
        failed.clone(),
        stop.clone(),
    ));

    wait::until("batches acked before the kill", PHASE, || {
        acked.load(Ordering::SeqCst) >= 20
    })
    .await;
    tokio::task::block_in_place(|| process.kill());
    wait::until("publishes failing while the broker is gone", PHASE, || {
        failed.load(Ordering::SeqCst) >= 3
    })
    .await;
    tokio::task::block_in_place(|| process.restart());
    let before = acked.load(Ordering::SeqCst);
    wait::until("batches acked after the restart", PHASE, || {
        acked.load(Ordering::SeqCst) >= before + 20
    })
    .await;
    stop.cancel();
    let published = publisher.await.unwrap();

    eprintln!(
        "{broker:?}: {} batches acked, {} unavailable (slowest failure {:?})",
        published.acked.len(),
        published.failed.len(),
        published.slowest_failure
    );
    assert!(
        published.slowest_failure < FAIL_WITHIN,
        "a publish took {:?} to fail",
        published.slowest_failure
    );
    for batch in &published.failed {
        retry(&sink, batch).await;
    }
    let stored = sink.read(ReadFrom::Start, 1_000_000).await.unwrap();
    let stored_ids: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    let distinct: HashSet<&str> = stored_ids.iter().copied().collect();
    let sent: Vec<&Event> = published
        .acked
        .iter()
        .chain(&published.failed)
        .flatten()
        .collect();
    let lost: Vec<&str> = sent
        .iter()
        .map(|e| e.id.as_str())
        .filter(|id| !distinct.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} events lost, e.g. {:?}\n{}",
        lost.len(),
        sent.len(),
        &lost[..lost.len().min(5)],
        process.log()
    );
    assert_eq!(distinct.len(), sent.len(), "nothing but what was sent");
    if broker == Broker::Nats {
        // Retries came within the duplicate window: stored once each.
        assert_eq!(stored_ids.len(), distinct.len(), "duplicates stored");
    }
}

/// Publishes numbered batches until `stop`, counting acks and failures.
async fn publish_until(
    sink: Arc<Sink>,
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> Published {
    let mut published = Published::default();
    let mut n = 0usize;
    while !stop.is_cancelled() {
        let batch: Vec<Event> = (0..BATCH)
            .map(|_| {
                n += 1;
                Event::new(
                    "strangler.exchange.seen.v1",
                    Some("outage"),
                    &format!("c{n}"),
                    serde_json::json!({ "n": n }),
                )
            })
            .collect();
        let started = Instant::now();
        match sink.publish(&batch).await {
            Ok(()) => {
                published.acked.push(batch);
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Err(SinkError::Unavailable(_)) => {
                published.slowest_failure = published.slowest_failure.max(started.elapsed());
                published.failed.push(batch);
                failed.fetch_add(1, Ordering::SeqCst);
            }
            Err(e @ SinkError::Rejected(_)) => panic!("a batch was rejected: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    published
}

/// Publishes `batch` again until the broker takes it, as the spool does.
async fn retry(sink: &Sink, batch: &[Event]) {
    wait::eventually("a failed batch to be taken on retry", PHASE, || async {
        sink.publish(batch).await.ok()
    })
    .await;
}

/// Through the real proxy: client traffic goes on while its NATS broker is killed for a few
/// seconds and restarted. No client request fails, and every exchange's event arrives, once.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_exchange_events_survive_a_nats_outage() {
    let Some(mut process) = BrokerProcess::start(Broker::Nats) else {
        return;
    };
    let legacy = named::start("L").await;
    let bus = brokers::nats_bus(&process.url());
    let config = routes_toml(
        &legacy.url(),
        &format!(
            "[bus]\nkind = \"nats\"\nurl = \"{}\"\nstream = \"{}\"\nsubject_prefix = \"{}\"\n",
            process.url(),
            bus.stream,
            bus.subject_prefix
        ),
    );
    let proxy = Proxy::start(&config).await;
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let traffic = tokio::spawn(send_until(proxy.url(), sent.clone(), stop.clone()));

    wait::until("requests before the kill", PHASE, || {
        sent.load(Ordering::SeqCst) >= 50
    })
    .await;
    tokio::task::block_in_place(|| process.kill());
    let before = sent.load(Ordering::SeqCst);
    // The outage itself: a few seconds of traffic with no broker.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(sent.load(Ordering::SeqCst) > before, "traffic went on");
    tokio::task::block_in_place(|| process.restart());
    let before = sent.load(Ordering::SeqCst);
    wait::until("requests after the restart", PHASE, || {
        sent.load(Ordering::SeqCst) >= before + 50
    })
    .await;
    stop.cancel();
    let requests = traffic.await.unwrap();

    let reader = NatsSink::connect(&bus).await.unwrap();
    let stored = wait::eventually("every exchange event in the stream", PHASE, || async {
        let events = reader.read(ReadFrom::Start, 1_000_000).await.ok()?;
        let seen: Vec<Event> = events
            .into_iter()
            .filter(|e| e.kind == types::EXCHANGE_SEEN)
            .collect();
        (seen.len() >= requests.len()).then_some(seen)
    })
    .await;
    let ids: HashSet<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), stored.len(), "an event id stored twice");
    let mut correlations: Vec<&str> = stored.iter().map(|e| e.correlationid.as_str()).collect();
    correlations.sort_unstable();
    let mut want: Vec<&str> = requests.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(correlations, want, "one exchange event per request");
    proxy.handle.shutdown().await;
}

/// Sends GETs with their own request ids until `stop`; every one must be answered 200.
async fn send_until(url: String, sent: Arc<AtomicUsize>, stop: CancellationToken) -> Vec<String> {
    let client = raw_client();
    let mut ids = Vec::new();
    while !stop.is_cancelled() {
        let id = format!("outage-{}", ids.len());
        let response = client
            .get(format!("{url}/misc/outage"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {id} failed: {e}"));
        assert_eq!(response.status(), 200, "request {id}");
        ids.push(id);
        sent.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ids
}
