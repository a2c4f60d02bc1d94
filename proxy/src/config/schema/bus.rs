//! `[bus]`: which event sink, its broker settings, and the spool in front of it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::units::ByteSize;

/// Event bus kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    /// No publishing.
    #[default]
    None,
    /// Embedded append-only JSON-lines log.
    Log,
    /// NATS JetStream.
    Nats,
    /// Redis Streams.
    Redis,
    /// Apache Kafka (or any broker speaking its protocol).
    Kafka,
}

/// When the event log and the spool call `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// After every batch written: nothing acknowledged is lost even on power failure.
    Always,
    /// At most every `fsync_interval`: a power failure loses at most that much.
    #[default]
    Interval,
    /// Never (the OS writes back when it likes); a process crash still loses nothing.
    Never,
}

/// What the spool does when it reaches `spool_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Keep what is spooled; drop (and count) the events that do not fit.
    #[default]
    DropNewest,
    /// Make room by dropping (and counting) the oldest spooled segment.
    DropOldest,
}

/// `[bus]`: where events go, and how they wait when the broker is away. Read when the proxy
/// starts; a change needs a restart (a reload says so in the log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// Which sink (default `none`: nothing is published).
    pub kind: BusKind,
    /// Folder of the embedded log (kind = "log"; default `data/events`, relative to the
    /// config file's folder).
    pub path: Option<String>,
    /// A log segment is closed once it holds this much (default 16 MiB).
    pub segment_size: ByteSize,
    /// Closed log segments older than this are deleted (default 7 days).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Closed log segments are deleted, oldest first, while the log holds more (default 1 GiB).
    pub max_size: ByteSize,
    /// When the log and the spool are flushed to the disk (default `interval`).
    pub fsync: Fsync,
    /// With `fsync = "interval"`, how often (default 1 s).
    #[serde(with = "humantime_serde")]
    pub fsync_interval: Duration,
    /// Broker URL (kind = "nats" or "redis"; Kafka takes `brokers`).
    pub url: Option<String>,
    /// JetStream stream name (kind = "nats"; default `STRANGLER`); unique names let tests
    /// share a server.
    pub stream: String,
    /// NATS subjects are `<subject_prefix>.<type>` (default `strangler`).
    pub subject_prefix: String,
    /// Redis stream keys start with this (kind = "redis"; default `strangler`).
    pub key_prefix: String,
    /// Redis streams are trimmed to about this many entries (default 1 000 000).
    pub maxlen: u64,
    /// Events waiting in memory for the publisher at most (default 8192); beyond, new events
    /// are dropped and counted.
    pub channel: usize,
    /// Folder of the disk spool that holds events while the broker is away (default
    /// `data/spool`, relative to the config file's folder).
    pub spool: String,
    /// Most bytes the spool holds (default 256 MiB); then `on_full` decides.
    pub spool_max: ByteSize,
    /// What a full spool drops (default `drop_newest`); every drop is counted and logged.
    pub on_full: OnFull,
    /// Events per publish call at most (default 256).
    pub batch: usize,
    /// Whether every client exchange is published (default true).
    pub exchanges: bool,
    /// Kafka bootstrap brokers, comma-separated `host:port` (kind = "kafka").
    pub brokers: Option<String>,
    /// The Kafka topic events go to (default `strangler.events`).
    pub topic: String,
    /// Event type → topic, for types that go elsewhere than `topic`.
    pub topics_by_type: BTreeMap<String, String>,
    /// Partitions of a topic the proxy creates (default 3).
    pub partitions: u32,
    /// Replication factor of a topic the proxy creates (default 1).
    pub replication_factor: u16,
    /// Kafka batch compression (default `none`).
    pub compression: KafkaCompression,
    /// The CloudEvents Kafka binding's content mode (default `binary`).
    pub format: KafkaFormat,
    /// `[bus.kafka]`: librdkafka settings passed through (`"linger.ms" = "5"`); settings
    /// that would weaken delivery are refused by validation.
    pub kafka: BTreeMap<String, String>,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusKind::None,
            path: None,
            segment_size: ByteSize(16 << 20),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_size: ByteSize(1 << 30),
            fsync: Fsync::Interval,
            fsync_interval: Duration::from_secs(1),
            url: None,
            stream: "STRANGLER".into(),
            subject_prefix: "strangler".into(),
            key_prefix: "strangler".into(),
            maxlen: 1_000_000,
            channel: 8192,
            spool: "data/spool".into(),
            spool_max: ByteSize(256 << 20),
            on_full: OnFull::DropNewest,
            batch: 256,
            exchanges: true,
            brokers: None,
            topic: "strangler.events".into(),
            topics_by_type: BTreeMap::new(),
            partitions: 3,
            replication_factor: 1,
            compression: KafkaCompression::None,
            format: KafkaFormat::Binary,
            kafka: BTreeMap::new(),
        }
    }
}

/// How Kafka compresses message batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaCompression {
    /// No compression (the default: events are small and the proxy's CPU is for requests).
    #[default]
    None,
    /// gzip.
    Gzip,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl KafkaCompression {
    /// The librdkafka `compression.codec` value.
    pub fn codec(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// The CloudEvents Kafka protocol binding's content modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormat {
    /// Attributes in `ce_*` headers, the data as the value (the default).
    #[default]
    Binary,
    /// The whole JSON structured event as the value, `content-type:
    /// application/cloudevents+json`.
    Structured,
}
