//! Sinks: where the publisher delivers events, and where `strangler events` reads them back.
//!
//! Four kinds: the embedded [`log`] (append-only JSON-lines segments on local disk), NATS
//! JetStream ([`nats`]), Redis Streams ([`redis`]) and Kafka ([`kafka`]). A sink's `publish`
//! returns `Ok` only once every event of the batch is acknowledged (written, PubAck, XADD
//! reply, delivery report); the publisher keeps a batch in its spool until then.
//!
//! Errors come in two kinds that the publisher treats differently: [`SinkError::Unavailable`]
//! (the broker is down or slow: spool and retry later) and [`SinkError::Rejected`] (a config
//! or data problem that retrying will not fix: count, log loudly, move on).

pub mod kafka;
pub mod log;
pub mod nats;
pub mod redis;

use std::path::Path;
use std::time::SystemTime;

use super::Event;
use crate::config::{BusConfig, BusKind};

/// Why a sink did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The broker is down or slow; the batch can be sent again later.
    #[error("event sink unavailable: {0}")]
    Unavailable(String),
    /// The sink refused the batch, or its settings; sending it again will not help.
    #[error("event sink rejected the events: {0}")]
    Rejected(String),
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest event kept.
    Start,
    /// The first event at or after this time.
    Time(SystemTime),
    /// The event at this position (a log offset, a JetStream sequence, …).
    Offset(u64),
    /// The last `n` events.
    Tail(usize),
}

/// A connected sink of any kind.
#[derive(Debug)]
pub enum Sink {
    /// The embedded log (boxed too: its writer keeps the batch buffers).
    Log(Box<log::LogSink>),
    /// NATS JetStream (boxed: a client is much larger than the other kinds).
    Nats(Box<nats::NatsSink>),
    /// Redis Streams.
    Redis(Box<redis::RedisSink>),
    /// Kafka (boxed like NATS: it holds a producer and an admin client).
    Kafka(Box<kafka::KafkaSink>),
}

impl Sink {
    /// Connects to (or, for the log, opens) the sink `bus` names; relative paths are resolved
    /// against `base_dir`. `kind = "none"` is rejected.
    pub async fn connect(bus: &BusConfig, base_dir: &Path) -> Result<Self, SinkError> {
        match bus.kind {
            BusKind::None => Err(SinkError::Rejected(
                "no event bus is configured ([bus] kind = \"none\")".into(),
            )),
            BusKind::Log => Ok(Self::Log(Box::new(log::LogSink::open(bus, base_dir)?))),
            BusKind::Nats => Ok(Self::Nats(Box::new(nats::NatsSink::connect(bus).await?))),
            BusKind::Redis => Ok(Self::Redis(Box::new(redis::RedisSink::connect(bus).await?))),
            BusKind::Kafka => Ok(Self::Kafka(Box::new(kafka::KafkaSink::connect(bus).await?))),
        }
    }

    /// Delivers `batch` in order; `Ok` once every event is acknowledged.
    pub async fn publish(&self, batch: &[Event]) -> Result<(), SinkError> {
        match self {
            Self::Log(sink) => sink.publish(batch).await,
            Self::Nats(sink) => sink.publish(batch).await,
            Self::Redis(sink) => sink.publish(batch).await,
            Self::Kafka(sink) => sink.publish(batch).await,
        }
    }

    /// Up to `limit` stored events, oldest first, from `from` on.
    pub async fn read(&self, from: ReadFrom, limit: usize) -> Result<Vec<Event>, SinkError> {
        match self {
            Self::Log(sink) => sink.read(from, limit).await,
            Self::Nats(sink) => sink.read(from, limit).await,
            Self::Redis(sink) => sink.read(from, limit).await,
            Self::Kafka(sink) => sink.read(from, limit).await,
        }
    }

    /// Housekeeping on the publisher's timer: the log syncs when due and applies retention.
    pub fn maintain(&self) {
        if let Self::Log(sink) = self {
            sink.maintain();
        }
    }

    /// Makes everything published durable (on shutdown).
    pub fn flush(&self) {
        if let Self::Log(sink) = self {
            sink.flush();
        }
    }
}

/// Runs blocking disk work from async code: on a multi-threaded runtime the worker hands its
/// other tasks away first; on a current-thread runtime (tests) it just runs.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
