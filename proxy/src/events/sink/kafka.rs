//! The Kafka sink: events go to one topic (`[bus] topic`, some types elsewhere through
//! `topics_by_type`), keyed by correlation id so one exchange's events stay in order on one
//! partition, framed by the CloudEvents Kafka protocol binding ([`binding`]).
//!
//! Why librdkafka (the `rdkafka` crate): it is the reference client every Kafka distribution
//! tests against, and its idempotent producer (`enable.idempotence`, `acks=all`) is what makes
//! a retry inside the client store a message once and in order. Its own queue lives in memory
//! and dies with the process, so the proxy's disk spool stays in front of it.
//!
//! An event counts as published only when its delivery report says so. The topic is created
//! through the admin client when it is missing (production clusters often disable
//! auto-creation), at connect and again after any failed batch, since a broker that comes back
//! may have lost it; a topic that exists is checked for partitions. Every wait is bounded
//! (admin calls by [`TIMEOUT`], deliveries by `message.timeout.ms`), so a broker that is away
//! answers [`SinkError::Unavailable`] and the spool takes over.

pub mod binding;
mod read;
mod subscribe;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

pub use subscribe::{Ack, Subscription};

use super::{ReadFrom, SinkError, blocking};
use crate::config::{BusConfig, KafkaFormat};
use crate::events::Event;

/// How long an admin or metadata round trip may take before the broker counts as unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// `message.timeout.ms` unless `[bus.kafka]` sets it: a delivery report comes within this,
/// below the publisher's 10 s bound on one publish.
const MESSAGE_TIMEOUT_MS: &str = "5000";

/// Publishes events to Kafka topics and reads them back.
pub struct KafkaSink {
    /// Brokers, topics and client settings, shared with readers and subscriptions.
    settings: Arc<Settings>,
    /// The idempotent producer; replaced when librdkafka reports a fatal error.
    producer: Mutex<FutureProducer<Quiet>>,
    /// Creates missing topics (shared, so [`Drop`] can hand it to a blocking thread).
    admin: Arc<AdminClient<Quiet>>,
    /// Whether every topic is known to exist; cleared by a failed batch.
    topics_ready: AtomicBool,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What the sink, its reads and its subscriptions take from `[bus]`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Comma-separated bootstrap brokers.
    brokers: String,
    /// The default topic.
    topic: String,
    /// Types sent elsewhere.
    topics_by_type: std::collections::BTreeMap<String, String>,
    /// Partitions of a created topic.
    partitions: i32,
    /// Replication factor of a created topic.
    replication_factor: i32,
    /// The binding's content mode.
    format: KafkaFormat,
    /// librdkafka `compression.codec`.
    codec: &'static str,
    /// `[bus.kafka]`, passed through.
    extra: Vec<(String, String)>,
}

impl Settings {
    /// The Kafka half of `bus`; a bus without `brokers` is [`SinkError::Rejected`].
    pub(crate) fn from_bus(bus: &BusConfig) -> Result<Self, SinkError> {
        let brokers = bus.brokers.clone().ok_or_else(|| {
            SinkError::Rejected(
                "bus kind `kafka` needs `brokers` such as \"127.0.0.1:9092\"".into(),
            )
        })?;
        Ok(Self {
            brokers,
            topic: bus.topic.clone(),
            topics_by_type: bus.topics_by_type.clone(),
            partitions: i32::try_from(bus.partitions).unwrap_or(i32::MAX),
            replication_factor: i32::from(bus.replication_factor),
            format: bus.format,
            codec: bus.compression.codec(),
            extra: bus
                .kafka
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The topic an event of type `kind` goes to.
    pub(crate) fn topic_for(&self, kind: &str) -> &str {
        self.topics_by_type.get(kind).unwrap_or(&self.topic)
    }

    /// Every topic events may go to, sorted, once each.
    pub(crate) fn all_topics(&self) -> Vec<String> {
        let set: BTreeSet<&String> = std::iter::once(&self.topic)
            .chain(self.topics_by_type.values())
            .collect();
        set.into_iter().cloned().collect()
    }

    /// A client config with the brokers and the pass-through settings; the caller adds its
    /// role's settings after, so the delivery guarantees cannot be overridden.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "strangler")
            .set_log_level(RDKafkaLogLevel::Warning);
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    /// The producer's config: idempotent, every in-sync replica acknowledges.
    fn producer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        if config.get("message.timeout.ms").is_none() {
            config.set("message.timeout.ms", MESSAGE_TIMEOUT_MS);
        }
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.codec", self.codec);
        config
    }
}

/// A client context that sends librdkafka's own logs to `tracing` at debug level: a broker
/// that is away makes it log every reconnect attempt, and the sink reports outages itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(?level, facility = fac, "librdkafka: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, "librdkafka: {reason}");
    }
}

impl ConsumerContext for Quiet {}

impl KafkaSink {
    /// Builds the producer and admin client, then creates or checks every topic. Settings
    /// librdkafka refuses are [`SinkError::Rejected`]; an unreachable broker is
    /// [`SinkError::Unavailable`] (the publisher keeps spooling and connects again later).
    pub async fn connect(bus: &BusConfig) -> Result<Self, SinkError> {
        let settings = Arc::new(Settings::from_bus(bus)?);
        let producer = create_producer(&settings)?;
        let admin = Arc::new(create_admin(&settings)?);
        let sink = Self {
            settings,
            producer: Mutex::new(producer),
            admin,
            topics_ready: AtomicBool::new(false),
        };
        ensure_topics(&sink.settings, &sink.admin).await?;
        sink.topics_ready.store(true, Ordering::Release);
        Ok(sink)
    }

    /// Sends every event of `batch` (key = correlation id, the binding's headers) and waits
    /// for every delivery report. `Ok` only when all were delivered; a broker that is away or
    /// slow gives [`SinkError::Unavailable`] within `message.timeout.ms`, and the caller
    /// retries the batch (messages that did land are stored again with the same ids).
    pub async fn publish(&self, batch: &[Event]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        if !self.topics_ready.load(Ordering::Acquire) {
            ensure_topics(&self.settings, &self.admin).await?;
            self.topics_ready.store(true, Ordering::Release);
        }
        let producer = self.producer();
        let mut reports = Vec::with_capacity(batch.len());
        let mut failure = None;
        for event in batch {
            let message = binding::encode(event, self.settings.format)?;
            let mut record = FutureRecord::to(self.settings.topic_for(&event.kind))
                .key(event.correlationid.as_bytes())
                .payload(&message.value)
                .headers(message.headers);
            if let Some(ms) = message.timestamp_ms {
                record = record.timestamp(ms);
            }
            match producer.send_result(record) {
                Ok(report) => reports.push(report),
                Err((e, _)) => {
                    failure = Some(classify("queueing a message", &e));
                    break;
                }
            }
        }
        // Every queued message is awaited, even after a failure, so none is left behind
        // unreported while the batch is retried.
        for report in reports {
            let result = match report.await {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => classify("delivery", &e),
                Err(_) => SinkError::Unavailable("kafka: the producer was closed".into()),
            };
            failure.get_or_insert(result);
        }
        match failure {
            None => Ok(()),
            Some(e) => {
                self.after_failure(producer);
                Err(e)
            }
        }
    }

    /// Reads up to `limit` stored events across every partition of every topic, merged by
    /// event time, for `events tail` and `replay`. [`ReadFrom::Offset`] counts events to
    /// skip in that merged order.
    pub async fn read(&self, from: ReadFrom, limit: usize) -> Result<Vec<Event>, SinkError> {
        read::read(self.settings.clone(), from, limit).await
    }

    /// Subscribes as consumer group `group` to the topics of `types` (empty: every topic),
    /// reading from the group's committed offsets (the earliest kept for a new group).
    pub async fn subscribe(
        bus: &BusConfig,
        group: &str,
        types: &[&str],
    ) -> Result<Subscription, SinkError> {
        Subscription::new(Settings::from_bus(bus)?, group, types).await
    }

    /// The current producer (cheap to clone).
    fn producer(&self) -> FutureProducer<Quiet> {
        self.producer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// After a failed batch: check the topics again before the next one (the broker may have
    /// come back without them), and start the next batch on a fresh producer. A producer that
    /// failed a batch may hold idempotence state (producer id, sequence numbers) that a
    /// restarted broker no longer knows; librdkafka then either declares it fatal or keeps
    /// timing out, so it is replaced either way (consumers still drop repeated event ids).
    fn after_failure(&self, failed: FutureProducer<Quiet>) {
        self.topics_ready.store(false, Ordering::Release);
        match failed.client().fatal_error() {
            Some((code, reason)) => {
                tracing::warn!(
                    ?code,
                    reason,
                    "kafka: the producer hit a fatal error; starting a new one"
                );
            }
            None => tracing::debug!("kafka: a batch failed; the next one starts on a new producer"),
        }
        let fresh = match create_producer(&self.settings) {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::error!(error = %e, "kafka: cannot start a new producer; keeping the old one");
                return;
            }
        };
        let old = std::mem::replace(
            &mut *self.producer.lock().unwrap_or_else(PoisonError::into_inner),
            fresh,
        );
        // Destroying a librdkafka client waits for its threads, up to its socket timeout
        // while a request to a dead broker is in flight: never on the publisher's task. The
        // blocking pool runs it; nothing waits for it.
        drop(tokio::task::spawn_blocking(move || drop((old, failed))));
    }
}

impl Drop for KafkaSink {
    /// Destroying a librdkafka client waits for its threads (up to its socket timeout while a
    /// request to a dead broker is in flight): the last references go to the blocking pool,
    /// never stalling an async worker.
    fn drop(&mut self) {
        let producer = self
            .producer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let admin = self.admin.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn_blocking(move || drop((producer, admin))));
        }
    }
}

/// Creates every topic of `settings` that is missing, with `partitions` and
/// `replication_factor`, then checks that each has partitions clients can see. Never relies on
/// the broker's auto-creation.
pub(crate) async fn ensure_topics(
    settings: &Settings,
    admin: &AdminClient<Quiet>,
) -> Result<(), SinkError> {
    let names = settings.all_topics();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                settings.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT));
    let results = tokio::time::timeout(TIMEOUT * 2, admin.create_topics(&new, &options))
        .await
        .map_err(|_| {
            SinkError::Unavailable(format!(
                "kafka: brokers {} did not answer in time to create topics {names:?}",
                settings.brokers
            ))
        })?
        .map_err(|e| {
            classify(
                &format!(
                    "creating topics {names:?} on brokers {} (are they up?)",
                    settings.brokers
                ),
                &e,
            )
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(topic_error(&name, code)),
        }
    }
    let metadata = blocking(|| admin.inner().fetch_metadata(None, TIMEOUT)).map_err(|e| {
        classify(
            &format!("reading topic metadata from {}", settings.brokers),
            &e,
        )
    })?;
    for name in &names {
        match metadata.topics().iter().find(|t| t.name() == name) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {}
            Some(t) => {
                let code = t.error().map(RDKafkaErrorCode::from);
                return Err(SinkError::Unavailable(format!(
                    "kafka: topic `{name}` is not usable yet ({code:?}, {} partitions)",
                    t.partitions().len()
                )));
            }
            None => {
                return Err(SinkError::Unavailable(format!(
                    "kafka: topic `{name}` was created but the broker does not list it yet"
                )));
            }
        }
    }
    Ok(())
}

/// An admin client for `settings`.
pub(crate) fn create_admin(settings: &Settings) -> Result<AdminClient<Quiet>, SinkError> {
    settings
        .client_config()
        .create_with_context(Quiet)
        .map_err(|e| rejected_settings("admin client", &e))
}

/// The idempotent producer for `settings`.
fn create_producer(settings: &Settings) -> Result<FutureProducer<Quiet>, SinkError> {
    settings
        .producer_config()
        .create_with_context(Quiet)
        .map_err(|e| rejected_settings("producer", &e))
}

/// librdkafka refused the client settings: name the table to fix.
fn rejected_settings(role: &str, e: &KafkaError) -> SinkError {
    SinkError::Rejected(format!(
        "kafka: cannot create the {role}: {e}; check [bus] brokers and the [bus.kafka] settings"
    ))
}

/// A topic the broker would not create: a config problem, except when the broker is not
/// ready (no controller yet, timeouts).
fn topic_error(name: &str, code: RDKafkaErrorCode) -> SinkError {
    use RDKafkaErrorCode as C;
    let message = format!(
        "kafka: cannot create topic `{name}`: {code}; create it by hand or fix [bus] partitions / replication_factor"
    );
    match code {
        C::RequestTimedOut
        | C::OperationTimedOut
        | C::NotController
        | C::BrokerNotAvailable
        | C::LeaderNotAvailable
        | C::NetworkException
        | C::AllBrokersDown
        | C::BrokerTransportFailure => SinkError::Unavailable(message),
        _ => SinkError::Rejected(message),
    }
}

/// Rejected for what retrying cannot cure (a message too large, bad records, no rights on the
/// topic); Unavailable for the rest (transport, timeouts, leaders moving, a topic gone).
fn classify(what: &str, e: &KafkaError) -> SinkError {
    use RDKafkaErrorCode as C;
    let message = format!("kafka: {what}: {e}");
    match e.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidMessageSize
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::InvalidTopic
            | C::UnsupportedForMessageFormat,
        ) => SinkError::Rejected(message),
        _ => SinkError::Unavailable(message),
    }
}

#[cfg(test)]
mod tests;
