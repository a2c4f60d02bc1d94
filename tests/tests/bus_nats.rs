//! NATS JetStream end to end on the shared server: 10,000 events published through the sink
//! in batches of 256 reach a durable subscriber, every id once after dedup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use strangler::events::Event;
use strangler::events::sink::nats::NatsSink;
use system_tests::brokers;

const EVENTS: usize = 10_000;
const BATCH: usize = 256;

fn events() -> Vec<Event> {
    (0..EVENTS)
        .map(|i| {
            let kind = if i % 10 == 0 {
                "shop.order.placed"
            } else {
                "strangler.exchange.seen.v1"
            };
            let route = (i % 3 != 0).then_some("thumbnail");
            Event::new(kind, route, &format!("c{i}"), serde_json::json!({ "n": i }))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_events_reach_a_subscriber_once_each() {
    let Some(url) = brokers::shared_nats() else {
        return;
    };
    let bus = brokers::nats_bus(&url);
    let sink = NatsSink::connect(&bus).await.unwrap();
    let mut subscription = NatsSink::subscribe(&bus, "audit", None).await.unwrap();
    let consumer = tokio::spawn(async move {
        let mut ids = HashSet::new();
        let mut deliveries = 0;
        while ids.len() < EVENTS {
            let next = tokio::time::timeout(Duration::from_secs(30), subscription.next()).await;
            let (event, ack) = next.expect("an event within 30 s").expect("open").unwrap();
            ack.ack().await.unwrap();
            deliveries += 1;
            ids.insert(event.id);
        }
        (ids, deliveries)
    });

    let events = events();
    for batch in events.chunks(BATCH) {
        sink.publish(batch).await.unwrap();
    }
    // A batch sent again (an ack lost in an outage) is dropped by the duplicate window.
    sink.publish(&events[..BATCH]).await.unwrap();

    let (ids, deliveries) = consumer.await.unwrap();
    let want: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, want);
    assert_eq!(deliveries, EVENTS, "the stream stored each id once");
    let stored = sink
        .read(strangler::events::sink::ReadFrom::Start, 2 * EVENTS)
        .await
        .unwrap();
    assert_eq!(stored, events);
    brokers::delete_nats_stream(&bus).await;
}
