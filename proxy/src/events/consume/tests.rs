//! One scenario per bus: publish, consume, ack, reconnect (resumes after the last ack, the
//! unacked event comes again), other types filtered out. The log runs in a temp folder; NATS
//! and Redis run against the shared servers at 127.0.0.1:4222 / 6379 with names of their own
//! (skipped with a note when a server is not running, except in CI, where it fails).

use std::time::Duration;

use super::*;
use crate::events::sink::Sink;

const IMAGE: &str = "shop.image.uploaded";
const ORDER: &str = "shop.order.placed";

/// How long one delivery may take: NATS redelivers an unacked event after its 30 s ack wait.
const WITHIN: Duration = Duration::from_secs(60);

fn event(id: &str, kind: &str) -> Event {
    Event {
        specversion: "1.0".into(),
        id: id.into(),
        source: "strangler://test".into(),
        kind: kind.into(),
        time: "2026-01-01T00:00:00Z".into(),
        datacontenttype: "application/json".into(),
        subject: Some("images-upload".into()),
        correlationid: id.into(),
        data: serde_json::json!({ "image_id": id }).into(),
    }
}

/// Whether the shared server at `addr` is up; in CI a missing one fails the test.
fn server_up(addr: &str, what: &str) -> bool {
    let Ok(parsed) = addr.parse() else {
        return false;
    };
    if std::net::TcpStream::connect_timeout(&parsed, Duration::from_secs(1)).is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs {what} at {addr}"
    );
    eprintln!("note: no {what} at {addr}; test skipped");
    false
}

async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(WITHIN, consumer.next())
        .await
        .expect("an event within the deadline")
        .expect("a delivery")
}

/// The shared scenario, on any bus with `types` = [IMAGE].
async fn scenario(bus: &BusConfig, base: &Path) {
    let sink = Sink::connect(bus, base).await.unwrap();
    sink.publish(&[event("a", IMAGE), event("b", ORDER), event("c", IMAGE)])
        .await
        .unwrap();

    let mut consumer = Consumer::connect(bus, base, "thumbs", &[IMAGE])
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    assert_eq!(first.event.id, "a");
    first.ack().await.unwrap();
    let second = next(&mut consumer).await;
    assert_eq!(second.event.id, "c", "the order event is filtered out");
    drop(second);
    drop(consumer);

    // Reconnected: the unacked `c` comes again, the acked `a` does not.
    let mut consumer = Consumer::connect(bus, base, "thumbs", &[IMAGE])
        .await
        .unwrap();
    let again = next(&mut consumer).await;
    assert_eq!(again.event.id, "c");
    again.ack().await.unwrap();
    sink.publish(&[event("d", IMAGE)]).await.unwrap();
    let fresh = next(&mut consumer).await;
    assert_eq!(fresh.event.id, "d");
    fresh.ack().await.unwrap();
    drop(consumer);

    // Everything acked: a reconnect waits for new events only.
    let mut consumer = Consumer::connect(bus, base, "thumbs", &[IMAGE])
        .await
        .unwrap();
    sink.publish(&[event("e", ORDER), event("f", IMAGE)])
        .await
        .unwrap();
    let last = next(&mut consumer).await;
    assert_eq!(last.event.id, "f");
    last.ack().await.unwrap();

    // Another name has a position of its own, from the oldest event on.
    let mut other = Consumer::connect(bus, base, "orders", &[ORDER])
        .await
        .unwrap();
    assert_eq!(next(&mut other).await.event.id, "b");
}

#[tokio::test]
async fn log_consumer_resumes_after_its_last_ack() {
    let dir = tempfile::tempdir().unwrap();
    let bus = BusConfig {
        kind: BusKind::Log,
        path: Some("events".into()),
        ..BusConfig::default()
    };
    scenario(&bus, dir.path()).await;
    let saved = std::fs::read_to_string(dir.path().join("events/consumers/thumbs.offset")).unwrap();
    assert_eq!(saved.trim(), "6", "every event up to `f` was handled");
}

#[tokio::test]
async fn log_consumer_of_all_types_waits_for_the_first_event() {
    let dir = tempfile::tempdir().unwrap();
    let bus = BusConfig {
        kind: BusKind::Log,
        path: Some("events".into()),
        ..BusConfig::default()
    };
    let mut consumer = Consumer::connect(&bus, dir.path(), "all", &[])
        .await
        .unwrap();
    let sink = Sink::connect(&bus, dir.path()).await.unwrap();
    sink.publish(&[event("x", ORDER)]).await.unwrap();
    assert_eq!(next(&mut consumer).await.event.id, "x");
}

#[tokio::test]
async fn nats_consumer_resumes_after_its_last_ack() {
    if !server_up("127.0.0.1:4222", "a NATS server with JetStream") {
        return;
    }
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let bus = BusConfig {
        kind: BusKind::Nats,
        url: Some("nats://127.0.0.1:4222".into()),
        stream: format!("TEST_{unique}"),
        subject_prefix: format!("t{unique}"),
        ..BusConfig::default()
    };
    scenario(&bus, Path::new(".")).await;
    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    async_nats::jetstream::new(client)
        .delete_stream(&bus.stream)
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_consumer_resumes_after_its_last_ack() {
    if !server_up("127.0.0.1:6379", "a Redis server") {
        return;
    }
    let bus = BusConfig {
        kind: BusKind::Redis,
        url: Some("redis://127.0.0.1:6379".into()),
        key_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        ..BusConfig::default()
    };
    scenario(&bus, Path::new(".")).await;
    let client = ::redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}:*", bus.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    ::redis::cmd("DEL")
        .arg(keys)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_needs_the_types_and_names_are_checked() {
    let bus = BusConfig {
        kind: BusKind::Redis,
        url: Some("redis://127.0.0.1:6379".into()),
        ..BusConfig::default()
    };
    let err = Consumer::connect(&bus, Path::new("."), "all", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("name the types"), "{err}");
    let err = Consumer::connect(&bus, Path::new("."), "a.b", &[IMAGE])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("consumer name `a.b`"), "{err}");
    let none = BusConfig::default();
    assert!(matches!(
        Consumer::connect(&none, Path::new("."), "x", &[]).await,
        Err(SinkError::Rejected(_))
    ));
}

#[test]
fn bus_is_read_from_a_routes_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    std::fs::write(
        &file,
        "default_upstream = \"legacy\"\n[listen]\naddress = \"127.0.0.1:0\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[bus]\nkind = \"log\"\npath = \"ev\"\n",
    )
    .unwrap();
    let (bus, base) = bus_from_config_file(&file).unwrap();
    assert_eq!(bus.kind, BusKind::Log);
    assert_eq!(log::folder(&bus, &base), dir.path().join("ev"));

    std::fs::write(
        &file,
        "default_upstream = \"legacy\"\n[listen]\naddress = \"127.0.0.1:0\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let err = bus_from_config_file(&file).unwrap_err();
    assert!(err.to_string().contains("no event bus"), "{err}");
}
