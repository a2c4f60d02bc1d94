//! The consuming side, for extracted services: a durable pull consumer with explicit acks.
//!
//! Delivery is at-least-once: an event not acked within [`ACK_WAIT`] comes again, and an event
//! whose publish was retried past the stream's duplicate window is stored twice. A consumer
//! therefore drops an `id` it has already handled.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, AckKind};
use futures_util::{Stream, StreamExt};

use super::{NatsSink, unavailable};
use crate::config::BusConfig;
use crate::events::Event;
use crate::events::sink::SinkError;

/// How long the broker waits for an ack before it delivers an event again.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Confirms one delivered event; until then, the broker delivers it again after the ack wait.
#[derive(Debug)]
pub struct Ack {
    /// The delivered message, whose reply subject carries the ack.
    message: jetstream::Message,
}

impl Ack {
    /// Tells the broker the event was handled, so it is not delivered to this consumer again;
    /// `Ok` once the broker confirmed it recorded the ack.
    pub async fn ack(self) -> Result<(), SinkError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| unavailable("acking an event", e))
    }
}

impl NatsSink {
    /// Consumes the stream named in `settings` through the durable consumer `durable_name`
    /// (created on first use, then resumed where its acks left off), optionally limited to
    /// `filter_subject` (e.g. `strangler.shop.order.placed.*`; `None` takes every event).
    ///
    /// Each item is an event with its [`Ack`]. An item `Err(Unavailable)` reports a broker
    /// hiccup and the stream goes on; a message that is not an event is terminated (never
    /// redelivered) and reported as `Err(Rejected)`. A consumer that exists with another
    /// filter is `Rejected`: pick another durable name.
    pub async fn subscribe(
        settings: &BusConfig,
        durable_name: &str,
        filter_subject: Option<&str>,
    ) -> Result<
        impl Stream<Item = Result<(Event, Ack), SinkError>> + Send + Unpin + 'static,
        SinkError,
    > {
        let sink = Self::connect(settings).await?;
        let stream = sink
            .inner
            .js
            .get_stream(&sink.inner.stream)
            .await
            .map_err(|e| unavailable("getting the stream", e))?;
        let filter = filter_subject.unwrap_or_default().to_owned();
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                durable_name,
                pull::Config {
                    durable_name: Some(durable_name.to_owned()),
                    deliver_policy: DeliverPolicy::All,
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    filter_subject: filter.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| {
                use jetstream::stream::ConsumerErrorKind as Kind;
                let message = format!("nats: consumer `{durable_name}`: {e}");
                match e.kind() {
                    Kind::JetStream(_) | Kind::InvalidName | Kind::InvalidConsumerType => {
                        SinkError::Rejected(message)
                    }
                    _ => SinkError::Unavailable(message),
                }
            })?;
        let existing = &consumer.cached_info().config.filter_subject;
        if *existing != filter {
            return Err(SinkError::Rejected(format!(
                "nats: consumer `{durable_name}` exists with filter `{existing}`, not `{filter}`"
            )));
        }
        let messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("starting to consume", e))?;
        Ok(messages
            .then(|item| async move {
                let message = item.map_err(|e| unavailable("consuming", e))?;
                match serde_json::from_slice::<Event>(&message.payload) {
                    Ok(event) => Ok((event, Ack { message })),
                    Err(e) => {
                        let subject = message.subject.to_string();
                        if let Err(e) = message.ack_with(AckKind::Term).await {
                            tracing::debug!(error = %e, "nats: terminating a bad message failed");
                        }
                        Err(SinkError::Rejected(format!(
                            "nats: a message on `{subject}` is not an event: {e}"
                        )))
                    }
                }
            })
            .boxed())
    }
}
