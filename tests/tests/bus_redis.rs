//! Redis Streams end to end on the shared server: 10,000 events published through the sink in
//! batches of 256 reach a consumer group over both type keys, every id once after dedup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use strangler::events::Event;
use strangler::events::sink::ReadFrom;
use strangler::events::sink::redis::RedisSink;
use system_tests::brokers;

const EVENTS: usize = 10_000;
const BATCH: usize = 256;
const TYPES: [&str; 2] = ["shop.order.placed", "strangler.exchange.seen.v1"];

fn events() -> Vec<Event> {
    (0..EVENTS)
        .map(|i| {
            let kind = TYPES[usize::from(i % 10 != 0)];
            let route = (i % 3 != 0).then_some("thumbnail");
            Event::new(kind, route, &format!("c{i}"), serde_json::json!({ "n": i }))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_events_reach_a_consumer_group_once_each_after_dedup() {
    let Some(url) = brokers::shared_redis() else {
        return;
    };
    let bus = brokers::redis_bus(&url);
    let sink = RedisSink::connect(&bus).await.unwrap();
    let mut subscription = RedisSink::subscribe(&bus, "audit", "a1", &TYPES)
        .await
        .unwrap();
    // A batch sent twice (a reply lost in an outage) is stored twice: this many deliveries.
    let expected_deliveries = EVENTS + BATCH;
    let consumer = tokio::spawn(async move {
        let mut ids = HashSet::new();
        let mut deliveries = 0;
        while deliveries < expected_deliveries {
            let next = tokio::time::timeout(Duration::from_secs(30), subscription.next()).await;
            let (event, ack) = next.expect("an event within 30 s").expect("open").unwrap();
            ack.ack().await.unwrap();
            deliveries += 1;
            ids.insert(event.id);
        }
        ids
    });

    let events = events();
    for batch in events.chunks(BATCH) {
        sink.publish(batch).await.unwrap();
    }
    sink.publish(&events[..BATCH]).await.unwrap();

    let ids = consumer.await.unwrap();
    let want: HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, want, "every id, once after dedup");
    let stored = sink.read(ReadFrom::Start, 2 * EVENTS).await.unwrap();
    assert_eq!(stored.len(), expected_deliveries);
    brokers::delete_redis_keys(&bus).await;
}
