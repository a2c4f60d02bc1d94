//! Moving routes and watching the system move: flips through the admin API, a background
//! client counting failed requests, the events on the NATS stream, and the extracted
//! consumers' positions on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use strangler::config::BusConfig;
use strangler::events::sink::ReadFrom;
use strangler::events::sink::nats::NatsSink;
use strangler::events::{Event, types};
use system_tests::{Proxy, raw_client, wait};

use super::config::{DEADLINE, TOKEN};
use super::journeys::{Seen, record};

/// A client sending reads of every kind until `stop` (or a minute); returns (sent, failed).
pub fn background(proxy_url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let client = raw_client();
        let paths = [
            "/misc/currency?amount=10&from=USD&to=EUR",
            "/misc/health",
            "/misc/thumbnail?image=img-1&w=48&h=48",
            "/api/products/RED-CHAIR",
            "/api/products",
            "/products",
            "/products/RED-CHAIR",
        ];
        let (mut sent, mut failed) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for path in paths.iter().cycle() {
            if stop.load(Ordering::SeqCst) || tokio::time::Instant::now() > deadline {
                break;
            }
            let answer = client.get(format!("{proxy_url}{path}")).send().await;
            sent += 1;
            match answer {
                Ok(a) if a.status().is_success() => {}
                Ok(a) => {
                    eprintln!("background GET {path}: {}", a.status());
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("background GET {path}: {e}");
                    failed += 1;
                }
            }
        }
        (sent, failed)
    })
}

/// Moves `route` to `mode` (a canary at 50%) through the admin API and waits until it is live.
pub async fn flip(client: &reqwest::Client, proxy: &Proxy, route: &str, mode: &str) {
    let body = match mode {
        "canary" => json!({ "mode": mode, "percent": 50, "reason": "migration test" }),
        _ => json!({ "mode": mode, "reason": "migration test" }),
    };
    let answer = client
        .put(format!("{}/admin/routes/{route}", proxy.admin_url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let said: Value = answer.json().await.unwrap();
    assert_eq!(status, 200, "flip {route} to {mode}: {said}");
    // The reload may be the file watcher's rather than this request's: wait for the live view.
    let url = format!("{}/admin/routes/{route}", proxy.admin_url());
    wait::eventually(&format!("{route} live in {mode}"), DEADLINE, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let view: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (view["mode"] == mode).then_some(())
        }
    })
    .await;
}

/// The events on the bus so far, oldest first.
pub async fn on_the_bus(sink: &NatsSink) -> Vec<Event> {
    sink.read(ReadFrom::Start, 100_000).await.unwrap()
}

/// Waits until at least `count` events of type `kind` are on the bus; returns them.
pub async fn wait_for(sink: &NatsSink, kind: &str, count: usize) -> Vec<Event> {
    wait::eventually(&format!("{count} {kind} events"), DEADLINE, || async move {
        let found: Vec<Event> = on_the_bus(sink)
            .await
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect();
        (found.len() >= count).then_some(found)
    })
    .await
}

/// The `route.changed` steps of `route` on the bus, as their `to` stages.
pub fn steps(events: &[Event], route: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == types::ROUTE_CHANGED && e.data.value()["route"] == route)
        .map(|e| e.data.value()["to"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Waits until durable consumer `name` has handled and acknowledged every event of type
/// `kind` on the stream (the consumers keep one JetStream consumer per type).
pub async fn caught_up(bus: &BusConfig, name: &str, kind: &str) {
    let client = async_nats::connect(bus.url.as_deref().unwrap())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let durable = format!("{name}__{}", kind.replace('.', "_"));
    wait::eventually(&format!("consumer {durable} caught up"), DEADLINE, || {
        let (js, durable) = (js.clone(), durable.clone());
        async move {
            let stream = js.get_stream(&bus.stream).await.ok()?;
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer(&durable).await.ok()?;
            let info = consumer.info().await.ok()?;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0)
                .then_some(())
        }
    })
    .await;
}

/// Re-publishes `event` as a new message with the same event id: a redelivery.
pub async fn deliver_again(bus: &BusConfig, event: &Event) {
    let client = async_nats::connect(bus.url.as_deref().unwrap())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let subject = format!(
        "{}.{}.{}",
        bus.subject_prefix,
        event.kind,
        event.subject.as_deref().unwrap_or("_")
    );
    js.publish(subject, serde_json::to_vec(event).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// What the API service at `base` says about `orders` and the products they bought.
pub async fn projection(client: &reqwest::Client, base: &str, orders: &[String]) -> Vec<Seen> {
    let mut paths: Vec<String> = orders
        .iter()
        .map(|id| format!("/api/orders/{id}"))
        .collect();
    paths.extend(
        [
            "/api/orders",
            "/api/products/RED-CHAIR",
            "/api/products/BLUE-LAMP",
            "/api/products/GLASS-VASE",
        ]
        .map(str::to_owned),
    );
    record(client, base, &paths).await
}
