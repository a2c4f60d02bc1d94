//! Against the real JetStream server at 127.0.0.1:4222 (skipped with a note when it is not
//! running, except in CI, where a missing server fails). Each test uses its own stream and
//! subject prefix and deletes the stream at the end.

use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;

use super::*;

const SHARED: &str = "127.0.0.1:4222";

/// Settings naming a fresh stream on the shared server, or `None` (test skipped) without one.
fn settings() -> Option<BusConfig> {
    if std::net::TcpStream::connect_timeout(&SHARED.parse().ok()?, Duration::from_secs(1)).is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs a NATS server with JetStream at {SHARED}"
        );
        eprintln!("note: no NATS server at {SHARED}; test skipped");
        return None;
    }
    let unique = uuid::Uuid::new_v4().simple().to_string();
    Some(BusConfig {
        url: Some(format!("nats://{SHARED}")),
        stream: format!("TEST_{unique}"),
        subject_prefix: format!("t{unique}"),
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

async fn delete(sink: &NatsSink) {
    sink.inner
        .js
        .delete_stream(&sink.inner.stream)
        .await
        .unwrap();
}

#[tokio::test]
async fn published_events_read_back_in_order() {
    let Some(settings) = settings() else { return };
    let before = SystemTime::now() - Duration::from_secs(5);
    let sink = NatsSink::connect(&settings).await.unwrap();
    let events = three();
    sink.publish(&events).await.unwrap();

    assert_eq!(sink.read(ReadFrom::Start, 10).await.unwrap(), events);
    assert_eq!(sink.read(ReadFrom::Start, 2).await.unwrap(), events[..2]);
    assert_eq!(sink.read(ReadFrom::Tail(2), 10).await.unwrap(), events[1..]);
    assert_eq!(
        sink.read(ReadFrom::Offset(3), 10).await.unwrap(),
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

    let subjects: Vec<String> = events.iter().map(|e| sink.subject(e)).collect();
    let prefix = &settings.subject_prefix;
    assert_eq!(
        subjects,
        [
            format!("{prefix}.strangler.exchange.seen.v1.thumbnail"),
            format!("{prefix}.shop.order.placed._"),
            format!("{prefix}.strangler.exchange.seen.v1.feeds"),
        ]
    );
    delete(&sink).await;
}

#[tokio::test]
async fn a_redelivered_id_is_stored_once() {
    let Some(settings) = settings() else { return };
    let sink = NatsSink::connect(&settings).await.unwrap();
    let events = three();
    sink.publish(&events).await.unwrap();
    // A retry after a lost ack: same ids, inside the duplicate window.
    sink.publish(&events[1..]).await.unwrap();
    assert_eq!(sink.read(ReadFrom::Start, 10).await.unwrap(), events);
    delete(&sink).await;
}

#[tokio::test]
async fn a_batch_wider_than_the_ack_window_is_published_whole() {
    let Some(settings) = settings() else { return };
    let sink = NatsSink::connect(&settings).await.unwrap();
    let batch: Vec<Event> = (0..WINDOW * 5 + 7)
        .map(|i| event(&format!("w{i}"), "shop.order.placed", None))
        .collect();
    sink.publish(&batch).await.unwrap();
    assert_eq!(
        sink.read(ReadFrom::Start, batch.len() + 1).await.unwrap(),
        batch
    );
    delete(&sink).await;
}

#[tokio::test]
async fn an_existing_stream_is_checked() {
    let Some(settings) = settings() else { return };
    let sink = NatsSink::connect(&settings).await.unwrap();
    // Connecting again to the same stream is fine.
    NatsSink::connect(&settings).await.unwrap();
    delete(&sink).await;
    sink.inner
        .js
        .create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            storage: StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();
    let err = NatsSink::connect(&settings).await.unwrap_err();
    assert!(
        matches!(&err, SinkError::Rejected(m) if m.contains("file storage")),
        "{err:?}"
    );
    delete(&sink).await;
}

#[tokio::test]
async fn subscribers_get_their_events_and_resume_after_acks() {
    let Some(settings) = settings() else { return };
    let sink = NatsSink::connect(&settings).await.unwrap();
    let events = three();
    sink.publish(&events).await.unwrap();

    let filter = format!("{}.strangler.exchange.seen.v1.*", settings.subject_prefix);
    let mut seen = NatsSink::subscribe(&settings, "seen", Some(&filter))
        .await
        .unwrap();
    for want in [&events[0], &events[2]] {
        let (event, ack) = seen.next().await.unwrap().unwrap();
        assert_eq!(&event, want);
        ack.ack().await.unwrap();
    }
    drop(seen);

    let mut all = NatsSink::subscribe(&settings, "all", None).await.unwrap();
    for want in &events {
        let (event, ack) = all.next().await.unwrap().unwrap();
        assert_eq!(&event, want);
        ack.ack().await.unwrap();
    }
    drop(all);
    // The durable consumer resumes where its acks left off: nothing pending, nothing due.
    let stream = sink.inner.js.get_stream(&settings.stream).await.unwrap();
    let mut durable: jetstream::consumer::PullConsumer = stream.get_consumer("all").await.unwrap();
    let info = durable.info().await.unwrap();
    assert_eq!(info.ack_floor.stream_sequence, 3);
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));

    let err = NatsSink::subscribe(&settings, "seen", None).await.err();
    assert!(matches!(err, Some(SinkError::Rejected(_))), "{err:?}");
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
        url: Some(format!("nats://127.0.0.1:{port}")),
        stream: "NOWHERE".into(),
        subject_prefix: "nowhere".into(),
        ..BusConfig::default()
    };
    let started = Instant::now();
    let err = NatsSink::connect(&settings).await.unwrap_err();
    assert!(matches!(err, SinkError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < TIMEOUT * 2, "{:?}", started.elapsed());
}

#[test]
fn subject_tokens_are_valid() {
    assert_eq!(subject_tokens("shop.order.placed"), "shop.order.placed");
    assert_eq!(subject_tokens("a b.*.>..x"), "a_b._._._.x");
    assert_eq!(subject_tokens(""), "_");
}
