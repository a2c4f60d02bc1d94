//! The order consumer: keeps the misc service's catalogue in step with the monolith's
//! orders and product edits, so `/misc/feed.rss`, `/misc/feed.atom` and `/misc/export.csv`
//! answer as the monolith does after its writes.
//!
//! It consumes `shop.order.placed`, `shop.order.cancelled` and `shop.product.updated` (derived
//! by the proxy from the monolith's API answers; see the `emit` rules in routes.toml) and
//! applies each to the shared [`Catalogue`] with [`Catalogue::apply`]: placed orders are
//! appended with the monolith's id, time, names and prices and take their units out of stock,
//! cancelled ones are removed and put them back, product edits take the monolith's fields.
//!
//! A `shop.order.placed` that names the order by its id only (the page checkout's) is first
//! completed from the monolith's JSON API ([`crate::monolith`]); while the monolith is away
//! the event waits, unacked.
//!
//! Idempotent by event id: the catalogue remembers the ids it applied, so a redelivery changes
//! nothing; an event is acked after it is applied. An event whose data cannot be applied is
//! logged and acked — delivering it again would give the same answer.
//!
//! The catalogue lives in memory and starts from the seed: after a restart, the durable
//! consumer resumes after its last ack, so a service that must show the orders taken before
//! it started needs a consumer name the bus has not seen (it starts at the oldest event kept)
//! or a `strangler events replay` into its subscription.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use strangler::config::BusConfig;
use strangler::events::consume::Consumer;
use strangler::events::sink::SinkError;

use crate::misc::catalogue::EVENT_TYPES;
use crate::misc::{Applied, Catalogue};
use crate::monolith::Monolith;

/// The default durable consumer name (its position on the bus).
pub const CONSUMER_NAME: &str = "misc-orders";
/// The first pause after a bus failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the consumer needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bus the proxy publishes to (`[bus]` of its routes.toml).
    pub bus: BusConfig,
    /// The folder relative bus paths start from (the routes.toml's folder).
    pub base_dir: PathBuf,
    /// The durable consumer name; [`CONSUMER_NAME`] unless several services must keep
    /// positions of their own.
    pub consumer: String,
    /// The monolith's base URL, e.g. `http://127.0.0.1:8081`, to complete page-checkout orders.
    pub legacy_url: String,
}

/// Why the consumer stopped before its shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The bus refused the subscription (bad settings, a name in use with other filters).
    #[error("order consumer: cannot consume {EVENT_TYPES:?}: {0}")]
    Bus(#[source] SinkError),
    /// The HTTP client for the monolith could not be built.
    #[error("order consumer: cannot build an HTTP client for the monolith: {0}")]
    Client(#[source] reqwest::Error),
}

/// Applies the monolith's order and product events to `catalogue` until `shutdown` resolves.
///
/// An unreachable bus is retried with backoff (the service starts before the broker does, or
/// rides out an outage); a bus that refuses the subscription stops it with an error.
pub async fn run(
    settings: Settings,
    catalogue: Catalogue,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    let monolith = Monolith::new(&settings.legacy_url).map_err(WorkerError::Client)?;
    tokio::select! {
        result = consume(&settings, &monolith, &catalogue) => result,
        () = shutdown => Ok(()),
    }
}

/// Subscribes (retrying while the bus is away) and applies deliveries forever.
async fn consume(
    settings: &Settings,
    monolith: &Monolith,
    catalogue: &Catalogue,
) -> Result<(), WorkerError> {
    let mut pause = FIRST_BACKOFF;
    let mut consumer = loop {
        match Consumer::connect(
            &settings.bus,
            &settings.base_dir,
            &settings.consumer,
            EVENT_TYPES,
        )
        .await
        {
            Ok(consumer) => break consumer,
            Err(SinkError::Unavailable(e)) => {
                tracing::warn!(error = %e, "order consumer: the bus is away; retrying");
                pause = wait(pause).await;
            }
            Err(e) => return Err(WorkerError::Bus(e)),
        }
    };
    tracing::info!(consumer = %settings.consumer, "order consumer consuming {EVENT_TYPES:?}");
    let mut pause = FIRST_BACKOFF;
    loop {
        match consumer.next().await {
            Ok(delivery) => {
                pause = FIRST_BACKOFF;
                let event = loop {
                    match monolith.complete(&delivery.event).await {
                        Ok(event) => break event,
                        Err(e) => {
                            tracing::warn!(error = %e, "order consumer: the monolith is away");
                            pause = wait(pause).await;
                        }
                    }
                };
                match catalogue.apply(&event) {
                    Applied::Rejected(reason) => {
                        tracing::warn!(event = %event.id, kind = %event.kind, %reason,
                            "order consumer: event cannot be applied; skipped");
                    }
                    outcome => {
                        tracing::debug!(event = %event.id, kind = %event.kind, ?outcome,
                            "order consumer applied an event");
                    }
                }
                let id = event.id.clone();
                if let Err(e) = delivery.ack().await {
                    // Not acked: the bus delivers it again, and the catalogue skips the id.
                    tracing::warn!(event = %id, error = %e, "order consumer: ack failed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "order consumer: reading the bus failed; retrying");
                pause = wait(pause).await;
            }
        }
    }
}

/// Sleeps `pause` and returns the next, doubled and capped.
async fn wait(pause: Duration) -> Duration {
    tokio::time::sleep(pause).await;
    (pause * 2).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests;
