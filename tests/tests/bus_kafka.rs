//! Kafka as the bus, against a real Kafka-protocol broker (Tansu, one process per test on a
//! free loopback port, in-memory storage; see `system_tests::tansu`):
//!
//! - every event type the proxy emits arrives with the CloudEvents binary-mode headers, and
//!   its attributes plus data validate against the type's JSON Schema;
//! - a broker that is down when the proxy starts: requests all succeed, and once it is up
//!   every exchange event arrives, each id once; a broker killed and restarted mid-traffic:
//!   no request fails and every event sent after the restart arrives once;
//! - the proxy SIGKILLed with events waiting in its spool: after a restart they reach a
//!   consumer group, none twice after dedup by id;
//! - reading back (`events tail` / `replay`) from the start, the tail, an offset or a time;
//! - the thumbnail worker consuming from Kafka, its group's offset committed after processing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "bus_kafka/raw.rs"]
mod raw;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use strangler::config::BusConfig;
use strangler::events::consume::Consumer;
use strangler::events::sink::kafka::KafkaSink;
use strangler::events::sink::{ReadFrom, SinkError};
use strangler::events::{Event, types};
use system_tests::candidate::PriceBug;
use system_tests::running::Running;
use system_tests::tansu::{self, Tansu};
use system_tests::{Legacy, Proxy, named, raw_client, routes_toml, wait};

use raw::{binary_event, committed_at_end, raw_messages, validator};
use tokio_util::sync::CancellationToken;

/// Generous bound for each phase of a test.
const PHASE: Duration = Duration::from_secs(60);

/// `[bus]` for `bus`, with the spool beside routes.toml.
fn bus_toml(bus: &BusConfig) -> String {
    format!(
        "[bus]\nkind = \"kafka\"\nbrokers = \"{}\"\ntopic = \"{}\"\nspool = \"spool\"\n",
        bus.brokers.as_deref().unwrap(),
        bus.topic
    )
}

/// A routes.toml publishing to `bus` with a route that climbs and falls back (rollout events),
/// a shadow route whose candidate is unreachable (shadow.skipped) and an order route with an
/// emit rule.
fn every_type_config(legacy: &str, candidate: &str, bus: &BusConfig) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.new]
url = "{candidate}"
[upstreams.dead]
url = "http://127.0.0.1:1"

[[routes]]
id = "product"
match = {{ path = "/api/products/{{sku}}" }}
mode = "shadow"
extracted = "new"
shadow = {{ baseline = 0.0 }}
canary = {{ percent = 0, key = "request_id" }}
promote = {{ auto = true, min_samples = 15, window = "2s", max_p99_ratio = 50.0, steps = [50, 100] }}
rollback = {{ min_samples = 10, max_error_rate_delta = 0.2 }}

[[routes]]
id = "unreachable"
match = {{ path = "/misc/unreachable" }}
mode = "shadow"
extracted = "dead"

[[routes]]
id = "api-orders"
match = {{ path = "/api/orders" }}
mode = "legacy"

[[routes.emit]]
type = "shop.order.placed"
when = {{ methods = ["POST"], status = [201] }}
data = {{ order_id = "response:/id", sku = "request:/sku", quantity = "request:/quantity" }}

{}"#,
            bus_toml(bus)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_arrives_with_the_binding_headers_and_a_valid_body() {
    let Some(broker) = Tansu::start() else {
        return;
    };
    let bus = tansu::kafka_bus(&broker.brokers());
    let legacy = Legacy::stable().await;
    let twin = Legacy::stable().await;
    let candidate = PriceBug::start(&twin.url(), "NO-SUCH-SKU").await;
    let proxy = Proxy::start(&every_type_config(&legacy.url(), &candidate.url(), &bus)).await;
    let client = raw_client();
    let seen_types = |kinds: &[&str]| {
        let brokers = broker.brokers();
        let topic = bus.topic.clone();
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
        async move {
            let messages = tokio::task::spawn_blocking(move || raw_messages(&brokers, &topic))
                .await
                .unwrap();
            let have: HashSet<&String> = messages
                .iter()
                .filter_map(|m| m.headers.get("ce_type"))
                .collect();
            kinds.iter().all(|k| have.contains(k)).then_some(messages)
        }
    };

    // An order (emit rule) and a shadow copy to an unreachable candidate.
    let placed = client
        .post(format!("{}/api/orders", proxy.url()))
        .json(&json!({"sku": "GLASS-VASE", "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let skipped = client
        .get(format!("{}/misc/unreachable", proxy.url()))
        .send()
        .await
        .unwrap();
    let _ = skipped.bytes().await.unwrap();
    // Product reads until the rollout promotes, then a failing candidate until it rolls back.
    let stop = CancellationToken::new();
    let load = tokio::spawn(product_reads(proxy.url(), stop.clone()));
    wait::eventually("a rollout promotion on Kafka", PHASE, || {
        seen_types(&[types::ROLLOUT_PROMOTED])
    })
    .await;
    candidate.start_failing();
    wait::eventually("a rollback on Kafka", PHASE, || {
        seen_types(&[types::ROLLOUT_ROLLED_BACK])
    })
    .await;
    stop.cancel();
    // Reads answered by the failing candidate fail: that is what makes the rollout roll back.
    load.await.unwrap();
    // A broken file is refused, and says so on the bus.
    std::fs::write(proxy.config_path(), "default_upstream = 3\n").unwrap();
    proxy.handle.reload().await;

    let mut want: Vec<&str> = types::ALL.to_vec();
    want.push("shop.order.placed");
    let messages = wait::eventually("every event type on Kafka", PHASE, || seen_types(&want)).await;
    for kind in &want {
        let raw = messages
            .iter()
            .find(|m| m.headers.get("ce_type").is_some_and(|t| t == kind))
            .unwrap();
        let event = binary_event(raw);
        match validator(kind) {
            Some(schema) => {
                let errors: Vec<String> =
                    schema.iter_errors(&event).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{kind}: {errors:?}\n{event:#}");
            }
            None => assert!(kind.starts_with("shop."), "{kind} needs a schema"),
        }
    }
    let ids: HashSet<&String> = messages.iter().map(|m| &m.headers["ce_id"]).collect();
    assert_eq!(ids.len(), messages.len(), "each event stored once");
    proxy.stop().await;
}

/// GETs a product until `stop` (at most 2 minutes).
async fn product_reads(url: String, stop: CancellationToken) {
    let client = raw_client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !stop.is_cancelled() && tokio::time::Instant::now() < deadline {
        if let Ok(answer) = client
            .get(format!("{url}/api/products/RED-CHAIR"))
            .send()
            .await
        {
            let _ = answer.bytes().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the topic holds an exchange event for each of `correlations`; returns how
/// many times each event id was stored, per correlation id.
async fn exchange_events(bus: &BusConfig, correlations: &[String]) -> HashMap<String, Vec<String>> {
    let reader = wait::eventually("a Kafka reader", PHASE, || async {
        KafkaSink::connect(bus).await.ok()
    })
    .await;
    let want: HashSet<&String> = correlations.iter().collect();
    wait::eventually("every exchange event on Kafka", PHASE, || async {
        let events = reader.read(ReadFrom::Start, 1_000_000).await.ok()?;
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        for event in events
            .into_iter()
            .filter(|e| e.kind == types::EXCHANGE_SEEN)
        {
            if want.contains(&event.correlationid) {
                found.entry(event.correlationid).or_default().push(event.id);
            }
        }
        (found.len() == want.len()).then_some(found)
    })
    .await
}

/// Each correlation id has one exchange event, stored once.
fn once_each(found: &HashMap<String, Vec<String>>) {
    for (correlation, ids) in found {
        assert_eq!(ids.len(), 1, "{correlation}: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_and_no_event_is_lost_while_the_broker_is_away() {
    let Some(mut broker) = Tansu::stopped() else {
        return;
    };
    let legacy = named::start("L").await;
    let bus = tansu::kafka_bus(&broker.brokers());
    let proxy = Proxy::start(&routes_toml(&legacy.url(), &bus_toml(&bus))).await;
    let client = raw_client();

    // The broker is down from the proxy's start on.
    let mut before = Vec::new();
    for i in 0..100 {
        let id = format!("down-{i}");
        let answer = client
            .get(format!("{}/misc/kafka", proxy.url()))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {id} failed: {e}"));
        assert_eq!(answer.status(), 200, "request {id}");
        before.push(id);
    }
    tokio::task::block_in_place(|| broker.restart());
    once_each(&exchange_events(&bus, &before).await);

    // Killed and restarted mid-traffic (the restarted broker starts empty).
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let traffic = tokio::spawn(send_until(proxy.url(), sent.clone(), stop.clone()));
    wait::until("requests before the kill", PHASE, || {
        sent.load(Ordering::SeqCst) >= 50
    })
    .await;
    tokio::task::block_in_place(|| broker.kill());
    // The outage itself: a few seconds of traffic with no broker.
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| broker.restart());
    let restarted_at = sent.load(Ordering::SeqCst);
    wait::until("requests after the restart", PHASE, || {
        sent.load(Ordering::SeqCst) >= restarted_at + 50
    })
    .await;
    stop.cancel();
    let requests = traffic.await.unwrap();
    let after = &requests[restarted_at..];
    once_each(&exchange_events(&bus, after).await);
    let url = format!("{}/admin/events/stats", proxy.admin_url());
    let stats = wait::eventually("the spool drained", PHASE, || async {
        let stats: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
        (stats["spool_pending"] == 0).then_some(stats)
    })
    .await;
    eprintln!("publisher after the outages: {stats}");
    assert_eq!(stats["kind"], "kafka", "{stats}");
    assert_eq!(stats["failed"], 0, "{stats}");
    assert!(
        stats["spooled"].as_u64() >= Some(100),
        "the outages were spooled: {stats}"
    );
    proxy.stop().await;
}

/// Sends GETs with their own request ids until `stop` (at most 2 minutes); every one must be
/// answered 200. Returns the ids in order.
async fn send_until(url: String, sent: Arc<AtomicUsize>, stop: CancellationToken) -> Vec<String> {
    let client = raw_client();
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !stop.is_cancelled() && tokio::time::Instant::now() < deadline {
        let id = format!("live-{}", ids.len());
        let answer = client
            .get(format!("{url}/misc/kafka"))
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {id} failed: {e}"));
        assert_eq!(answer.status(), 200, "request {id}");
        ids.push(id);
        sent.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_spooled_before_a_kill_9_reach_a_consumer_group() {
    const REQUESTS: usize = 100;
    let Some(mut broker) = Tansu::stopped() else {
        return;
    };
    let legacy = named::start("L").await;
    let bus = tansu::kafka_bus(&broker.brokers());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes_toml(&legacy.url(), &bus_toml(&bus))).unwrap();
    let client = raw_client();

    let mut first = Running::start(&config);
    let sent = first.requests(&client, "/misc/crash", REQUESTS).await;
    first
        .stats_until(&client, "every event spooled", |s| {
            s["spool_pending"].as_u64() >= Some(REQUESTS as u64)
        })
        .await;
    first.kill_9();
    let spooled: HashSet<String> =
        strangler::events::sink::log::read(&dir.path().join("spool"), ReadFrom::Start, 100_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == types::EXCHANGE_SEEN)
            .map(|e| e.id)
            .collect();
    assert_eq!(spooled.len(), REQUESTS, "one spooled event per request");

    tokio::task::block_in_place(|| broker.restart());
    let second = Running::start(&config);
    let mut consumer = wait::eventually("a Kafka consumer group", PHASE, || async {
        Consumer::connect(&bus, dir.path(), "crash", &[types::EXCHANGE_SEEN])
            .await
            .ok()
    })
    .await;
    let mut handled = HashSet::new();
    let mut deliveries = 0;
    let deadline = tokio::time::Instant::now() + PHASE;
    while !spooled.is_subset(&handled) {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {REQUESTS} spooled events arrived", handled.len()));
        let delivery = match next {
            Ok(delivery) => delivery,
            Err(SinkError::Unavailable(_)) => continue,
            Err(e) => panic!("the consumer failed: {e}"),
        };
        deliveries += 1;
        // An idempotent consumer: a repeated id is only acked.
        handled.insert(delivery.event.id.clone());
        delivery.ack().await.unwrap();
    }
    assert_eq!(handled, spooled, "exactly the spooled events");
    eprintln!("{deliveries} deliveries for {} events", handled.len());
    let stats = second
        .stats_until(&client, "the spool drained", |s| s["spool_pending"] == 0)
        .await;
    assert_eq!(stats["failed"], 0, "{stats}");
    assert_eq!(sent.len(), REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_read_back_from_the_start_the_tail_an_offset_or_a_time() {
    let Some(broker) = Tansu::start() else {
        return;
    };
    let bus = tansu::kafka_bus(&broker.brokers());
    let sink = KafkaSink::connect(&bus).await.unwrap();
    // Whole milliseconds, as event times are written.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let start = UNIX_EPOCH + Duration::from_millis(now_ms as u64 - 60_000);
    let events: Vec<Event> = (0..30u64)
        .map(|i| {
            let at = start + Duration::from_secs(i);
            Event::at(
                "strangler.exchange.seen.v1",
                None,
                &format!("c{i}"),
                json!({ "n": i }),
                at,
            )
        })
        .collect();
    sink.publish(&events).await.unwrap();
    let ids = |events: &[Event]| events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();

    assert_eq!(
        ids(&sink.read(ReadFrom::Start, 100).await.unwrap()),
        ids(&events)
    );
    assert_eq!(
        ids(&sink.read(ReadFrom::Start, 5).await.unwrap()),
        ids(&events[..5])
    );
    assert_eq!(
        ids(&sink.read(ReadFrom::Tail(4), 100).await.unwrap()),
        ids(&events[26..])
    );
    assert_eq!(
        ids(&sink.read(ReadFrom::Offset(10), 3).await.unwrap()),
        ids(&events[10..13])
    );
    let at = start + Duration::from_secs(20);
    assert_eq!(
        ids(&sink.read(ReadFrom::Time(at), 100).await.unwrap()),
        ids(&events[20..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_and_the_structured_mode_round_trip() {
    use strangler::config::{KafkaCompression, KafkaFormat};

    let Some(broker) = Tansu::start() else {
        return;
    };
    for (compression, format) in [
        (KafkaCompression::Gzip, KafkaFormat::Binary),
        (KafkaCompression::Lz4, KafkaFormat::Binary),
        (KafkaCompression::Zstd, KafkaFormat::Binary),
        (KafkaCompression::None, KafkaFormat::Structured),
    ] {
        let bus = BusConfig {
            compression,
            format,
            ..tansu::kafka_bus(&broker.brokers())
        };
        let sink = KafkaSink::connect(&bus).await.unwrap();
        let events: Vec<Event> = (0..20)
            .map(|i| {
                let mut event = Event::new(
                    "strangler.exchange.seen.v1",
                    Some("r"),
                    &format!("c{i}"),
                    json!({ "n": i, "text": "a compressible text ".repeat(20) }),
                );
                event.source = "strangler://test".into();
                event
            })
            .collect();
        sink.publish(&events).await.unwrap();
        let mut stored = sink.read(ReadFrom::Start, 100).await.unwrap();
        // Events of one millisecond on different partitions have no order between them.
        stored.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(stored, events, "{compression:?} {format:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thumbnail_worker_consumes_from_kafka_and_commits_after_processing() {
    use extracted::misc::PictureStore;
    use extracted::worker::thumbnails;

    let Some(broker) = Tansu::start() else {
        return;
    };
    let bus = tansu::kafka_bus(&broker.brokers());
    let legacy = Legacy::stable().await;
    let upload = raw_client()
        .post(format!("{}/images", legacy.url()))
        .header("content-type", "image/png")
        .body(png())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let image: Value = upload.json().await.unwrap();
    let mut uploaded = Event::new(
        thumbnails::EVENT_TYPE,
        Some("images-upload"),
        "upload-1",
        json!({"image_id": image["id"], "url": image["url"], "content_type": "image/png"}),
    );
    uploaded.source = "strangler://test".into();
    let sink = KafkaSink::connect(&bus).await.unwrap();
    // The event twice (a retried batch): the worker handles it once.
    sink.publish(&[uploaded.clone(), uploaded.clone()])
        .await
        .unwrap();

    let base = tempfile::tempdir().unwrap();
    let store = PictureStore::open(&base.path().join("pictures")).unwrap();
    let consumer = format!("thumbs_{}", std::process::id());
    let settings = thumbnails::Settings {
        bus: bus.clone(),
        base_dir: base.path().to_owned(),
        legacy_url: legacy.url(),
        consumer: consumer.clone(),
    };
    let stop = CancellationToken::new();
    let worker = tokio::spawn(thumbnails::run(
        settings,
        store.clone(),
        stop.clone().cancelled_owned(),
    ));
    let id = image["id"].as_str().unwrap().to_owned();
    wait::until("the picture stored with its thumbnails", PHASE, || {
        store.was_processed(&uploaded.id) && store.original(&id).is_ok_and(|p| p.is_some())
    })
    .await;
    // Both messages handled: the group's committed offsets reach the end of the topic.
    let (brokers, topic) = (broker.brokers(), bus.topic.clone());
    wait::eventually("the group's offsets committed", PHASE, || {
        let (brokers, topic, group) = (brokers.clone(), topic.clone(), consumer.clone());
        async move {
            tokio::task::spawn_blocking(move || committed_at_end(&brokers, &topic, &group))
                .await
                .unwrap()
                .then_some(())
        }
    })
    .await;
    stop.cancel();
    worker.await.unwrap().unwrap();
}

fn png() -> Vec<u8> {
    let picture =
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode a PNG");
    out.into_inner()
}
