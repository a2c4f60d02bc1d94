//! Against the real Redis server at 127.0.0.1:6379 (skipped with a note when it is not running,
//! except in CI, where a missing server fails). Each test uses its own key prefix and deletes
//! its keys at the end.

use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;

use super::*;

const SHARED: &str = "127.0.0.1:6379";

/// Settings naming a fresh key prefix on the shared server, or `None` (test skipped) without one.
fn settings() -> Option<BusConfig> {
    if std::net::TcpStream::connect_timeout(&SHARED.parse().ok()?, Duration::from_secs(1)).is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs a Redis server at {SHARED}"
        );
        eprintln!("note: no Redis server at {SHARED}; test skipped");
        return None;
    }
    Some(BusConfig {
        url: Some(format!("redis://{SHARED}")),
        key_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        ..BusConfig::default()
    })
}

fn event(id: &str, kind: &str, route: Option<&str>) -> Event {
    Event {
        specversion: "1.0".into(),
        id: id.into(),
        source: "strangler://test".into(),
        kind: kind.into(),
        time: "2026-01-01T00:00:00Z".into(),
        datacontenttype: "application/json".into(),
        subject: route.map(Into::into),
        correlationid: id.into(),
        data: serde_json::json!({ "n": id }).into(),
    }
}

fn three() -> Vec<Event> {
    vec![
        event("e1", "strangler.exchange.seen.v1", Some("thumbnail")),
        event("e2", "shop.order.placed", None),
        event("e3", "strangler.exchange.seen.v1", Some("feeds")),
    ]
}

/// Publishes one event per call, so each lands in a later entry than the one before (a
/// single pipelined batch may share a millisecond across keys).
async fn publish_apart(sink: &RedisSink, events: &[Event]) {
    for event in events {
        sink.publish(std::slice::from_ref(event)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn delete(sink: &RedisSink) {
    let keys = sink.stream_keys().await.unwrap();
    let mut conn = sink.conn.clone();
    redis::cmd("DEL")
        .arg(keys)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn published_events_read_back_in_order() {
    let Some(settings) = settings() else { return };
    let before = SystemTime::now() - Duration::from_secs(5);
    let sink = RedisSink::connect(&settings).await.unwrap();
    let events = three();
    publish_apart(&sink, &events).await;

    assert_eq!(sink.read(ReadFrom::Start, 10).await.unwrap(), events);
    assert_eq!(sink.read(ReadFrom::Start, 2).await.unwrap(), events[..2]);
    assert_eq!(sink.read(ReadFrom::Tail(2), 10).await.unwrap(), events[1..]);
    assert_eq!(
        sink.read(ReadFrom::Offset(2), 10).await.unwrap(),
        events[2..]
    );
    assert_eq!(sink.read(ReadFrom::Time(before), 10).await.unwrap(), events);
    let later = SystemTime::now() + Duration::from_secs(60);
    assert!(
        sink.read(ReadFrom::Time(later), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let prefix = &settings.key_prefix;
    assert_eq!(
        sink.stream_keys().await.unwrap(),
        [
            format!("{prefix}:shop.order.placed"),
            format!("{prefix}:strangler.exchange.seen.v1"),
        ]
    );
    delete(&sink).await;
}

#[tokio::test]
async fn a_batch_is_pipelined_and_trimmed() {
    let Some(mut settings) = settings() else {
        return;
    };
    settings.maxlen = 100;
    let sink = RedisSink::connect(&settings).await.unwrap();
    let batch: Vec<Event> = (0..1_000)
        .map(|i| event(&format!("b{i}"), "shop.order.placed", None))
        .collect();
    sink.publish(&batch).await.unwrap();
    let stored = sink.read(ReadFrom::Start, 10_000).await.unwrap();
    // `MAXLEN ~` trims whole nodes: about 100 are left, the newest ones, in order.
    assert!(
        stored.len() >= 100 && stored.len() < 1_000,
        "{}",
        stored.len()
    );
    assert_eq!(stored.last(), batch.last());
    delete(&sink).await;
}

#[tokio::test]
async fn a_redelivered_id_is_stored_again_with_the_same_id() {
    let Some(settings) = settings() else { return };
    let sink = RedisSink::connect(&settings).await.unwrap();
    let events = three();
    publish_apart(&sink, &events).await;
    // A retry after a lost reply: Redis has no duplicate window, so the consumer dedups by id.
    sink.publish(&events[1..]).await.unwrap();
    let stored = sink.read(ReadFrom::Start, 10).await.unwrap();
    assert_eq!(stored.len(), 5);
    let mut ids: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    delete(&sink).await;
}

#[tokio::test]
async fn subscribers_get_their_types_and_resume_after_acks() {
    let Some(settings) = settings() else { return };
    let sink = RedisSink::connect(&settings).await.unwrap();
    let events = three();
    publish_apart(&sink, &events).await;

    let seen_type = ["strangler.exchange.seen.v1"];
    let mut seen = RedisSink::subscribe(&settings, "svc", "c1", &seen_type)
        .await
        .unwrap();
    let (first, ack) = seen.next().await.unwrap().unwrap();
    assert_eq!(first, events[0]);
    ack.ack().await.unwrap();
    let (second, _not_acked) = seen.next().await.unwrap().unwrap();
    assert_eq!(second, events[2]);
    drop(seen);

    // A restarted consumer gets its unacked entry first, then what came since.
    let fourth = event("e4", "strangler.exchange.seen.v1", None);
    sink.publish(std::slice::from_ref(&fourth)).await.unwrap();
    let mut seen = RedisSink::subscribe(&settings, "svc", "c1", &seen_type)
        .await
        .unwrap();
    for want in [&events[2], &fourth] {
        let (event, ack) = seen.next().await.unwrap().unwrap();
        assert_eq!(&event, want);
        ack.ack().await.unwrap();
    }

    // Another group over both types sees everything.
    let all_types = ["strangler.exchange.seen.v1", "shop.order.placed"];
    let mut all = RedisSink::subscribe(&settings, "audit", "a1", &all_types)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (event, ack) = all.next().await.unwrap().unwrap();
        ids.push(event.id);
        ack.ack().await.unwrap();
    }
    ids.sort_unstable();
    assert_eq!(ids, ["e1", "e2", "e3", "e4"]);
    delete(&sink).await;
}

#[tokio::test]
async fn an_entry_that_is_not_an_event_is_reported_and_skipped() {
    let Some(settings) = settings() else { return };
    let sink = RedisSink::connect(&settings).await.unwrap();
    let kind = "shop.order.placed";
    let mut conn = sink.conn.clone();
    redis::cmd("XADD")
        .arg(sink.key(kind))
        .arg("*")
        .arg("junk")
        .arg("1")
        .query_async::<String>(&mut conn)
        .await
        .unwrap();
    let good = event("g1", kind, None);
    sink.publish(std::slice::from_ref(&good)).await.unwrap();

    let mut orders = RedisSink::subscribe(&settings, "svc", "c1", &[kind])
        .await
        .unwrap();
    let first = orders.next().await.unwrap();
    assert!(matches!(first, Err(SinkError::Rejected(_))), "{first:?}");
    let (event, ack) = orders.next().await.unwrap().unwrap();
    assert_eq!(event, good);
    ack.ack().await.unwrap();
    // `read` skips it too.
    assert_eq!(sink.read(ReadFrom::Start, 10).await.unwrap(), [good]);
    delete(&sink).await;
}

#[tokio::test]
async fn an_unreachable_broker_fails_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = BusConfig {
        url: Some(format!("redis://127.0.0.1:{port}")),
        ..BusConfig::default()
    };
    let started = Instant::now();
    let err = RedisSink::connect(&settings).await.unwrap_err();
    assert!(matches!(err, SinkError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < TIMEOUT * 2, "{:?}", started.elapsed());
}

#[test]
fn glob_characters_are_escaped() {
    assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
}
