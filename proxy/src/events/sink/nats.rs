//! The NATS JetStream sink: events go to one file-backed stream, one subject per type and route.
//!
//! Subjects are `<subject_prefix>.<type>.<route>` (`_` when the event names no route), e.g.
//! `strangler.strangler.exchange.seen.v1.thumbnail`, so a consumer filters on a type
//! (`strangler.shop.order.placed.*`), on a route (`strangler.>` then the last token), or takes
//! all (`strangler.>`). The stream (`[bus] stream`) holds `<subject_prefix>.>` in file storage.
//!
//! An event counts as published only when its PubAck arrived. Each message carries
//! `Nats-Msg-Id: <event id>`, so a batch retried after an outage within the stream's duplicate
//! window (at least 2 minutes) is stored once; past the window, consumers still drop a
//! redelivered id. The connection reconnects by itself; every call here is bounded by
//! [`TIMEOUT`], so a broker that is gone answers `Unavailable` instead of a hang.

mod subscribe;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishError, PublishErrorKind};
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;

pub use subscribe::Ack;

use super::{ReadFrom, SinkError};
use crate::config::BusConfig;
use crate::events::Event;

/// How long any broker round trip may take before the broker counts as unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The stream's duplicate window: a retried event within it is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The last subject token of an event that names no route.
const NO_ROUTE: &str = "_";
/// Messages in flight at most before their acks are awaited (the client allows 5,000).
const WINDOW: usize = 1_000;
/// Messages asked for per fetch when reading back.
const FETCH_BATCH: usize = 1_000;

/// Publishes events to a JetStream stream and reads them back. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NatsSink {
    /// Shared, so the sink stays small and a clone shares the connection.
    inner: Arc<Inner>,
}

/// What a sink and its clones share.
#[derive(Debug)]
struct Inner {
    /// The connection; async-nats reconnects it by itself after an outage.
    client: async_nats::Client,
    /// JetStream on `client`; API calls and acks are bounded by [`TIMEOUT`].
    js: Context,
    /// The stream's name (`[bus] stream`).
    stream: String,
    /// The first subject token(s) (`[bus] subject_prefix`).
    subject_prefix: String,
}

impl NatsSink {
    /// Connects and creates (or checks) the stream `stream` with subjects
    /// `<subject_prefix>.>`, file storage and a duplicate window of at least 2 minutes.
    ///
    /// An unreachable broker fails fast with [`SinkError::Unavailable`]; a stream that exists
    /// with other settings is [`SinkError::Rejected`] (fix the config or the stream).
    pub async fn connect(settings: &BusConfig) -> Result<Self, SinkError> {
        let url = settings.url.as_deref().ok_or_else(|| {
            SinkError::Rejected(
                "bus kind `nats` needs a `url` such as nats://127.0.0.1:4222".into(),
            )
        })?;
        let client = async_nats::ConnectOptions::new()
            .name("strangler")
            .connection_timeout(TIMEOUT)
            .request_timeout(Some(TIMEOUT))
            // After an outage, come back within a second of the broker rather than the
            // default's 4 s backoff: the spool is waiting.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100u64.saturating_mul(attempts as u64).min(1_000))
            })
            .connect(url)
            .await
            .map_err(|e| {
                use async_nats::ConnectErrorKind as Kind;
                let message = format!("nats: cannot connect to {url}: {e}");
                match e.kind() {
                    Kind::ServerParse | Kind::Tls => SinkError::Rejected(message),
                    _ => SinkError::Unavailable(message),
                }
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(TIMEOUT)
            .build(client.clone());
        let sink = Self {
            inner: Arc::new(Inner {
                client,
                js,
                stream: settings.stream.clone(),
                subject_prefix: settings.subject_prefix.clone(),
            }),
        };
        sink.ensure_stream().await?;
        Ok(sink)
    }

    /// Publishes each event on `<subject_prefix>.<type>.<route or "_">` with
    /// `Nats-Msg-Id: <event id>` and the JSON structured event as payload.
    ///
    /// Messages are sent in windows of up to 1,000, the whole window before any of its
    /// acks is awaited. `Ok` only when every PubAck arrived (a duplicate's ack counts: the
    /// broker holds it); a broker that is gone or slow gives [`SinkError::Unavailable`] within
    /// about 2 × [`TIMEOUT`] per window, and the caller retries the batch with the same ids.
    pub async fn publish(&self, batch: &[Event]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.inner.client.connection_state() == State::Disconnected {
            return Err(SinkError::Unavailable(
                "nats: disconnected, reconnecting".into(),
            ));
        }
        for window in batch.chunks(WINDOW) {
            self.publish_window(window).await?;
        }
        Ok(())
    }

    /// Reads up to `limit` stored events in stream order, from `from`, for `events tail` and
    /// `replay`. [`ReadFrom::Offset`] is a stream sequence (the first message is 1).
    ///
    /// Uses a short-lived ephemeral consumer without acks; events that do not parse are
    /// skipped with a warning.
    pub async fn read(&self, from: ReadFrom, limit: usize) -> Result<Vec<Event>, SinkError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut stream = self
            .inner
            .js
            .get_stream(&self.inner.stream)
            .await
            .map_err(|e| unavailable("getting the stream", e))?;
        let state = stream
            .info()
            .await
            .map_err(|e| unavailable("reading the stream's state", e))?
            .state
            .clone();
        if state.messages == 0 {
            return Ok(Vec::new());
        }
        let deliver_policy = match from {
            ReadFrom::Start => DeliverPolicy::All,
            ReadFrom::Time(at) => DeliverPolicy::ByStartTime {
                start_time: at.into(),
            },
            ReadFrom::Offset(sequence) => DeliverPolicy::ByStartSequence {
                start_sequence: sequence.max(1),
            },
            ReadFrom::Tail(n) => {
                let n = n.min(limit) as u64;
                if n == 0 {
                    return Ok(Vec::new());
                }
                DeliverPolicy::ByStartSequence {
                    start_sequence: state
                        .last_sequence
                        .saturating_sub(n - 1)
                        .max(state.first_sequence),
                }
            }
        };
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy,
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("creating a reader", e))?;
        let name = consumer.cached_info().name.clone();
        let pending = consumer.cached_info().num_pending;
        let read = drain(&consumer, pending, limit).await;
        // Best effort: the inactive threshold removes a reader left behind.
        if let Err(e) = stream.delete_consumer(&name).await {
            tracing::debug!(error = %e, consumer = %name, "nats: reader not deleted");
        }
        read
    }

    /// The subject an event is published on.
    fn subject(&self, event: &Event) -> String {
        let route = event.subject.as_deref().unwrap_or(NO_ROUTE);
        format!(
            "{}.{}.{}",
            self.inner.subject_prefix,
            subject_tokens(&event.kind),
            subject_tokens(route)
        )
    }

    /// Creates the stream, or checks that the existing one keeps what the contract promises.
    async fn ensure_stream(&self) -> Result<(), SinkError> {
        let wanted = format!("{}.>", self.inner.subject_prefix);
        let mut stream = self
            .inner
            .js
            .get_or_create_stream(stream::Config {
                name: self.inner.stream.clone(),
                subjects: vec![wanted.clone()],
                storage: StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                let message = format!("nats: stream `{}`: {e}", self.inner.stream);
                match e.kind() {
                    CreateStreamErrorKind::JetStream(_)
                    | CreateStreamErrorKind::EmptyStreamName
                    | CreateStreamErrorKind::InvalidStreamName => SinkError::Rejected(message),
                    CreateStreamErrorKind::JetStreamUnavailable => SinkError::Unavailable(format!(
                        "{message} (is the server started with JetStream, `-js`?)"
                    )),
                    _ => SinkError::Unavailable(message),
                }
            })?;
        let config = &stream
            .info()
            .await
            .map_err(|e| unavailable("reading the stream's config", e))?
            .config;
        let problem = if config.storage != StorageType::File {
            Some("does not use file storage".to_owned())
        } else if !config.subjects.iter().any(|s| s == &wanted || s == ">") {
            Some(format!("does not hold `{wanted}`"))
        } else if config.duplicate_window < DUPLICATE_WINDOW {
            Some("has a duplicate window under 2 minutes".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => Err(SinkError::Rejected(format!(
                "nats: stream `{}` exists but {problem}; delete it or set another `[bus] stream`",
                self.inner.stream
            ))),
            None => Ok(()),
        }
    }

    /// Sends `window`, then awaits its acks.
    async fn publish_window(&self, window: &[Event]) -> Result<(), SinkError> {
        let mut messages = Vec::with_capacity(window.len());
        for event in window {
            let payload = serde_json::to_vec(event).map_err(|e| {
                SinkError::Rejected(format!("event {} cannot be serialized: {e}", event.id))
            })?;
            messages.push((self.subject(event), event.id.clone(), payload));
        }
        let send = async {
            let mut acks = Vec::with_capacity(messages.len());
            for (subject, id, payload) in messages {
                let publish = jetstream::message::PublishMessage::build()
                    .payload(payload.into())
                    .message_id(id);
                acks.push(self.inner.js.send_publish(subject, publish).await?);
            }
            Ok(acks)
        };
        let acks = match tokio::time::timeout(TIMEOUT, send).await {
            Ok(Ok(acks)) => acks,
            Ok(Err(e)) => return Err(self.publish_error(e).await),
            Err(_) => return Err(unavailable("sending", "timed out")),
        };
        let confirm = async {
            for ack in acks {
                ack.await?;
            }
            Ok(())
        };
        match tokio::time::timeout(TIMEOUT, confirm).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.publish_error(e).await),
            Err(_) => Err(unavailable("waiting for acks", "timed out")),
        }
    }

    /// Maps a publish failure; a vanished stream is created again for the retry.
    async fn publish_error(&self, e: PublishError) -> SinkError {
        match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => {
                SinkError::Rejected(format!("nats: an event is too large: {e}"))
            }
            PublishErrorKind::StreamNotFound => {
                if let Err(e) = self.ensure_stream().await {
                    tracing::warn!(error = %e, "nats: stream not recreated");
                }
                unavailable(
                    "publishing",
                    format!("stream `{}` is missing", self.inner.stream),
                )
            }
            _ => unavailable("publishing", e),
        }
    }
}

/// Reads up to `limit` of the `pending` messages a reader will deliver.
async fn drain(
    consumer: &jetstream::consumer::PullConsumer,
    mut pending: u64,
    limit: usize,
) -> Result<Vec<Event>, SinkError> {
    let mut events = Vec::with_capacity(limit.min(pending as usize));
    while events.len() < limit && pending > 0 {
        let want = (limit - events.len())
            .min(FETCH_BATCH)
            .min(pending as usize);
        let mut batch = consumer
            .fetch()
            .max_messages(want)
            .messages()
            .await
            .map_err(|e| unavailable("fetching", e))?;
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| unavailable("fetching", e))?;
            got += 1;
            match serde_json::from_slice::<Event>(&message.payload) {
                Ok(event) => events.push(event),
                Err(e) => tracing::warn!(
                    subject = %message.subject,
                    error = %e,
                    "nats: skipped a message that is not an event"
                ),
            }
        }
        if got == 0 {
            break;
        }
        pending = pending.saturating_sub(got);
    }
    Ok(events)
}

/// `text` as one or more valid subject tokens: no spaces, wildcards or empty tokens.
fn subject_tokens(text: &str) -> String {
    text.split('.')
        .map(|token| {
            let token: String = token
                .chars()
                .map(|c| {
                    if c.is_whitespace() || c.is_control() || c == '*' || c == '>' {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            if token.is_empty() {
                "_".to_owned()
            } else {
                token
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A failure that retrying later can cure.
fn unavailable(what: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Unavailable(format!("nats: {what}: {e}"))
}
