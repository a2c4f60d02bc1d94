//! The event consumer: a durable subscription to the proxy's bus (`strangler::events::consume`)
//! for the types in `events::EVENT_TYPES`, each delivery applied to the store and then
//! acknowledged.
//!
//! Delivery is at-least-once and application is idempotent by event id, so an event
//! delivered twice, or replayed with `strangler events replay`, changes nothing the second
//! time. A database that fails is retried (the event is acked only once applied); a bus that
//! fails is read again after a pause. Neither stops the service, and neither spins.

use std::time::Duration;

use strangler::events::consume::{Consumer, bus_from_config_file};
use strangler::events::sink::SinkError;
use tokio::sync::watch;

use super::events::{self, Applied, EVENT_TYPES};
use super::{Api, EventSource};
use crate::monolith::Monolith;

/// The durable consumer name the service subscribes under unless told otherwise.
pub const CONSUMER_NAME: &str = "api-service";

/// How long to wait before trying the database or the bus again.
const RETRY: Duration = Duration::from_secs(1);

/// Subscribe to the bus the proxy's config file names.
pub(crate) async fn subscribe(source: &EventSource) -> Result<Consumer, SinkError> {
    let (bus, base_dir) = bus_from_config_file(&source.config)?;
    Consumer::connect(&bus, &base_dir, &source.consumer, EVENT_TYPES).await
}

/// Apply deliveries until `stop` turns true (or its sender is gone); an event naming an order
/// by its id only is first completed from the `monolith`.
pub(crate) async fn run(
    api: Api,
    monolith: Monolith,
    mut consumer: Consumer,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(types = ?EVENT_TYPES, "consuming the monolith's events");
    loop {
        let next = tokio::select! {
            _ = stopped(&mut stop) => return,
            next = consumer.next() => next,
        };
        let delivery = match next {
            Ok(delivery) => delivery,
            Err(err) => {
                tracing::warn!(error = %err, "reading the event bus failed; trying again");
                if pause(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        let event = loop {
            match monolith.complete(&delivery.event).await {
                Ok(event) => break event,
                Err(err) => {
                    tracing::warn!(error = %err, "the monolith is away");
                    if pause(&mut stop).await {
                        return;
                    }
                }
            }
        };
        let event = &*event;
        loop {
            match events::apply(api.store(), event).await {
                Ok(Applied::Rejected(reason)) => {
                    tracing::warn!(id = %event.id, kind = %event.kind, %reason, "event rejected");
                    break;
                }
                Ok(applied) => {
                    tracing::debug!(id = %event.id, kind = %event.kind, outcome = applied.as_str(), "event applied");
                    break;
                }
                Err(err) => {
                    tracing::error!(id = %event.id, kind = %event.kind, error = %err, "could not apply an event; trying again");
                    if pause(&mut stop).await {
                        return;
                    }
                }
            }
        }
        if let Err(err) = delivery.ack().await {
            // Not fatal: the event comes again and is recognised as a duplicate.
            tracing::warn!(error = %err, "could not acknowledge an event");
        }
    }
}

/// Resolves once stopping is asked for (or nobody can ask any more).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Wait before a retry; `true` when stopping was asked for meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stopped(stop) => true,
        _ = tokio::time::sleep(RETRY) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;
    use strangler::config::BusConfig;
    use strangler::events::Event;
    use strangler::events::sink::Sink;

    use super::*;
    use crate::api::router;
    use crate::api::test_support::{get, stable_api};

    /// A folder of its own with a routes.toml whose bus is a log in `events/`.
    struct Folder(std::path::PathBuf);

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_from_the_log_bus_are_applied_once_and_acked() {
        let folder =
            Folder(std::env::temp_dir().join(format!("api-consumer-{}", uuid::Uuid::new_v4())));
        std::fs::create_dir_all(&folder.0).unwrap();
        let config = folder.0.join("routes.toml");
        std::fs::write(
            &config,
            "default_upstream = \"legacy\"\n[listen]\naddress = \"127.0.0.1:0\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[bus]\nkind = \"log\"\npath = \"events\"\n",
        )
        .unwrap();
        let (bus, base): (BusConfig, _) = bus_from_config_file(&config).unwrap();
        let placed = Event::new(
            events::ORDER_PLACED,
            Some("api-orders"),
            "c1",
            json!({"order_id": "ord-000003", "sku": "RED-CHAIR", "quantity": 2}),
        );
        let other = Event::new(
            "shop.image.uploaded",
            None,
            "c2",
            json!({"image_id": "img-9"}),
        );
        // The same event stored twice (a publish retried after an outage), and another type.
        let sink = Sink::connect(&bus, &base).await.unwrap();
        sink.publish(&[placed.clone(), other, placed])
            .await
            .unwrap();

        let api = stable_api().await;
        let source = EventSource {
            config,
            consumer: CONSUMER_NAME.to_owned(),
            legacy_url: "http://127.0.0.1:1".to_owned(),
        };
        let subscription = subscribe(&source).await.unwrap();
        let (stop, stopped) = watch::channel(false);
        let monolith = Monolith::new(&source.legacy_url).unwrap();
        let task = tokio::spawn(run(api.clone(), monolith, subscription, stopped));

        let app = router(api.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        let offset = folder.0.join("events/consumers/api-service.offset");
        while !(get(&app, "/api/orders/ord-000003")
            .await
            .status
            .is_success()
            && std::fs::read_to_string(&offset).is_ok_and(|o| o.trim() == "3"))
        {
            assert!(
                Instant::now() < deadline,
                "the event was not consumed in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let chair = get(&app, "/api/products/RED-CHAIR").await.json();
        assert_eq!(chair["stock"], 18, "applied once despite the duplicate");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
    }
}
