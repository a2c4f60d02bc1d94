//! The consuming side of the bus, for the extracted services: a durable, named subscription
//! to the events the proxy publishes, whichever bus `[bus]` names.
//!
//! A [`Consumer`] hands out one [`Delivery`] at a time; the service acknowledges it once it
//! has handled the event. Delivery is at-least-once: an event that was not acknowledged comes
//! again (after a reconnect on every bus; on NATS also after the ack wait), and a publish
//! retried after an outage may store an event twice. A consumer therefore keeps the ids it has
//! handled (a `processed_events` table, a set) and skips one it has seen, which also makes
//! `strangler events replay` into its subscription harmless.
//!
//! Where each bus keeps a consumer's position:
//! - `log`: an offset file `<log folder>/consumers/<name>.offset`, written (temp file, then
//!   rename) on each ack; it holds the offset of the oldest event delivered and not acked.
//!   Re-reading from offset 0 (delete the file) rebuilds a consumer from the whole log.
//! - `nats`: a durable pull consumer per type (`<name>__<type>` with `.` as `_`; `<name>` for
//!   all types), built on the sink's [`NatsSink::subscribe`](super::sink::nats::NatsSink).
//! - `redis`: the consumer group `<name>` on each type's stream key, read as consumer `<name>`
//!   (its pending entries first, then new ones), built on the sink's `RedisSink::subscribe`.
//!   Redis keeps one stream per type, so a Redis consumer names its types.
//! - `kafka`: the consumer group `<name>` on the topics of the wanted types (every topic for
//!   none); offsets are committed after processing, never automatically (the sink's
//!   `KafkaSink::subscribe`).
//!
//! Never: move a position past an event that was not acked (a position lost with a power
//! cut only means redelivery), or spin on an outage (reads pause between failed attempts).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use super::Event;
use super::segment::{Item, Reader};
use super::sink::{SinkError, blocking, kafka, log, nats, redis};
use crate::config::{BusConfig, BusKind};

/// How often a log consumer looks for new lines once it has read everything.
const LOG_POLL: Duration = Duration::from_millis(100);

/// A broker subscription: events with their acks, as the sinks' `subscribe` yields them.
type Subscription<A> = Pin<Box<dyn Stream<Item = Result<(Event, A), SinkError>> + Send>>;

/// A durable, named subscription to the bus the proxy publishes to (log, nats, redis or
/// kafka).
pub struct Consumer {
    /// The event types wanted (empty: all); a bus that delivers more is filtered here.
    types: Vec<String>,
    /// Where events come from.
    source: Source,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

/// The bus-specific half of a [`Consumer`].
enum Source {
    /// The embedded log, read from its folder.
    Log(LogSource),
    /// NATS JetStream durable consumers, merged.
    Nats(Subscription<nats::Ack>),
    /// A Redis consumer group.
    Redis(Subscription<redis::Ack>),
    /// A Kafka consumer group.
    Kafka(kafka::Subscription),
}

impl Consumer {
    /// Subscribes as durable consumer `name` to events whose type is in `types` (empty =
    /// all; Redis needs at least one), on the bus `bus` describes; relative log paths
    /// resolve against `base_dir`. Reading resumes after the last acknowledged event of
    /// `name`, or starts at the oldest event kept for a new name.
    ///
    /// `name` is letters, digits, `-` and `_` (it becomes a file name, a NATS consumer name
    /// and a Redis group). An unreachable broker is [`SinkError::Unavailable`] (try again
    /// later); a bad name, `kind = "none"` or conflicting broker state is
    /// [`SinkError::Rejected`].
    pub async fn connect(
        bus: &BusConfig,
        base_dir: &Path,
        name: &str,
        types: &[&str],
    ) -> Result<Self, SinkError> {
        check_name(name)?;
        let source = match bus.kind {
            BusKind::None => {
                return Err(SinkError::Rejected(
                    "no event bus is configured ([bus] kind = \"none\"): set kind = \"log\", \"nats\", \"redis\" or \"kafka\"".into(),
                ));
            }
            BusKind::Log => Source::Log(LogSource::open(&log::folder(bus, base_dir), name)?),
            BusKind::Nats => Source::Nats(subscribe_nats(bus, name, types).await?),
            BusKind::Redis => {
                if types.is_empty() {
                    return Err(SinkError::Rejected(format!(
                        "redis consumer `{name}`: Redis keeps one stream per event type; name the types to consume"
                    )));
                }
                Source::Redis(Box::pin(
                    redis::RedisSink::subscribe(bus, name, name, types).await?,
                ))
            }
            BusKind::Kafka => Source::Kafka(kafka::KafkaSink::subscribe(bus, name, types).await?),
        };
        Ok(Self {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            source,
        })
    }

    /// Waits for the next event of the wanted types (at-least-once: an unacknowledged one
    /// comes again). An `Err(Unavailable)` is a broker hiccup: call `next` again, the
    /// subscription resumes. Unreadable entries are skipped with a warning.
    pub async fn next(&mut self) -> Result<Delivery, SinkError> {
        loop {
            let (event, ack) = match &mut self.source {
                Source::Log(source) => {
                    let (event, offset) = source.next().await?;
                    (event, Ack::Log(source.acks.clone(), offset))
                }
                Source::Nats(stream) => {
                    let (event, ack) = next_of(stream).await?;
                    (event, Ack::Nats(Box::new(ack)))
                }
                Source::Redis(stream) => {
                    let (event, ack) = next_of(stream).await?;
                    (event, Ack::Redis(ack))
                }
                Source::Kafka(subscription) => {
                    let (event, ack) = subscription.next().await?;
                    (event, Ack::Kafka(ack))
                }
            };
            let delivery = Delivery { event, ack };
            if self.wants(&delivery.event.kind) {
                return Ok(delivery);
            }
            // Another type on the same subject or stream: confirm it so it never comes again.
            delivery.ack().await?;
        }
    }

    /// Whether events of type `kind` are wanted.
    fn wants(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == kind)
    }
}

/// One received event; acknowledge it after processing so it is not redelivered.
#[derive(Debug)]
pub struct Delivery {
    /// The event.
    pub event: Event,
    /// How to confirm it to the bus it came from.
    ack: Ack,
}

impl Delivery {
    /// Confirms the event: it is not delivered to this consumer again. `Ok` once the position
    /// is recorded (the offset file renamed into place, the broker's ack reply received).
    pub async fn ack(self) -> Result<(), SinkError> {
        match self.ack {
            Ack::Log(acks, offset) => blocking(|| lock(&acks).ack(offset)),
            Ack::Nats(ack) => ack.ack().await,
            Ack::Redis(ack) => ack.ack().await,
            Ack::Kafka(ack) => ack.ack().await,
        }
    }
}

/// The bus-specific acknowledgement of a [`Delivery`].
#[derive(Debug)]
enum Ack {
    /// The log consumer's positions and the delivered offset.
    Log(Arc<Mutex<LogAcks>>, u64),
    /// A JetStream message's ack (boxed: it holds the whole message).
    Nats(Box<nats::Ack>),
    /// A Redis entry's `XACK`.
    Redis(redis::Ack),
    /// A Kafka offset commit.
    Kafka(kafka::Ack),
}

/// Reads `[bus]` from a strangler routes.toml (validated, with `STRANGLER__…` overrides), so
/// a service can be pointed at the proxy's own config file; returns it with the folder its
/// relative paths start from.
pub fn bus_from_config_file(path: &Path) -> Result<(BusConfig, PathBuf), SinkError> {
    let config = crate::config::load(path).map_err(|diags| {
        SinkError::Rejected(format!(
            "{diags}\n{} error(s) in {}",
            diags.0.len(),
            path.display()
        ))
    })?;
    let bus = config.raw().bus.clone();
    if bus.kind == BusKind::None {
        return Err(SinkError::Rejected(format!(
            "{} configures no event bus: set [bus] kind = \"log\" (or nats, redis, kafka)",
            path.display()
        )));
    }
    Ok((bus, config.base_dir().to_owned()))
}

/// Rejects a consumer name that cannot serve as a file name, NATS consumer and Redis group.
fn check_name(name: &str) -> Result<(), SinkError> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(SinkError::Rejected(format!(
            "consumer name `{name}`: use 1 to 64 letters, digits, `-` or `_`"
        )))
    }
}

/// The next event of a broker subscription, skipping entries that are not events.
async fn next_of<A>(stream: &mut Subscription<A>) -> Result<(Event, A), SinkError> {
    loop {
        match stream.next().await {
            Some(Ok(item)) => return Ok(item),
            Some(Err(SinkError::Rejected(message))) => {
                tracing::warn!(error = %message, "consumer skipped an entry that is not an event");
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Err(SinkError::Unavailable(
                    "the broker subscription ended; connect again".into(),
                ));
            }
        }
    }
}

// === nats ===

/// One durable per wanted type (filtered on its subjects), merged; all types: one durable.
async fn subscribe_nats(
    bus: &BusConfig,
    name: &str,
    types: &[&str],
) -> Result<Subscription<nats::Ack>, SinkError> {
    if types.is_empty() {
        let stream = nats::NatsSink::subscribe(bus, name, None).await?;
        return Ok(Box::pin(stream));
    }
    let mut streams = Vec::with_capacity(types.len());
    for kind in types {
        let durable = format!("{name}__{}", kind.replace(['.', ' ', '*', '>'], "_"));
        // `>` also takes routes whose names hold dots; `next` drops other types it matches.
        let filter = format!("{}.{kind}.>", bus.subject_prefix);
        streams.push(nats::NatsSink::subscribe(bus, &durable, Some(&filter)).await?);
    }
    Ok(Box::pin(futures_util::stream::select_all(streams)))
}

// === log ===

/// A consumer of the embedded log: a reader and the shared positions its acks move.
struct LogSource {
    /// Reads the log folder from the consumer's position on.
    reader: Reader,
    /// Shared with every delivery, whose ack records itself here.
    acks: Arc<Mutex<LogAcks>>,
}

/// Where a log consumer stands: what was delivered and is not acked yet.
#[derive(Debug)]
struct LogAcks {
    /// `<log>/consumers/<name>.offset`.
    file: PathBuf,
    /// Offsets delivered and not acked.
    outstanding: BTreeSet<u64>,
    /// The reader's next offset: everything before it was delivered or skipped.
    read: u64,
    /// The offset in the file: the oldest event not acked.
    saved: u64,
}

impl LogSource {
    /// Opens the consumer `name` of the log in `dir` at its saved offset (0 for a new one).
    fn open(dir: &Path, name: &str) -> Result<Self, SinkError> {
        let file = dir.join("consumers").join(format!("{name}.offset"));
        let saved = match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                SinkError::Rejected(format!(
                    "log consumer offset file {} is damaged ({e}); delete it to re-read the log from the start",
                    file.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(SinkError::Unavailable(format!(
                    "cannot read the log consumer offset file {}: {e}",
                    file.display()
                )));
            }
        };
        Ok(Self {
            reader: Reader::at_offset(dir, saved),
            acks: Arc::new(Mutex::new(LogAcks {
                file,
                outstanding: BTreeSet::new(),
                read: saved,
                saved,
            })),
        })
    }

    /// The next event and its offset, waiting for the proxy to write one.
    async fn next(&mut self) -> Result<(Event, u64), SinkError> {
        loop {
            let item = blocking(|| self.reader.next_item())
                .map_err(|e| SinkError::Unavailable(format!("reading the event log: {e}")))?;
            let Some(item) = item else {
                tokio::time::sleep(LOG_POLL).await;
                continue;
            };
            let read = self.reader.offset();
            let mut acks = lock(&self.acks);
            acks.read = read;
            match item {
                Item::Event(offset, event) => {
                    acks.outstanding.insert(offset);
                    return Ok((event, offset));
                }
                Item::Bad { offset, error } => {
                    tracing::warn!(offset, %error, "log consumer skipped a damaged line");
                }
                Item::Torn { segment } => {
                    tracing::warn!(
                        segment,
                        "log consumer skipped a torn line (a crash mid-write)"
                    );
                }
                Item::Gap { from, to } => tracing::warn!(
                    from,
                    to,
                    "log consumer: events were deleted by retention before they were read"
                ),
            }
        }
    }
}

impl LogAcks {
    /// Records `offset` as handled and saves the new position when it moved.
    fn ack(&mut self, offset: u64) -> Result<(), SinkError> {
        self.outstanding.remove(&offset);
        let position = self.outstanding.first().copied().unwrap_or(self.read);
        if position == self.saved {
            return Ok(());
        }
        self.save(position)?;
        self.saved = position;
        Ok(())
    }

    /// Writes `position` to a temp file and renames it over the offset file.
    fn save(&self, position: u64) -> Result<(), SinkError> {
        let fail = |e: std::io::Error| {
            SinkError::Unavailable(format!(
                "cannot save the log consumer offset {}: {e}",
                self.file.display()
            ))
        };
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let temp = self.file.with_extension("offset.tmp");
        std::fs::write(&temp, format!("{position}\n")).map_err(fail)?;
        std::fs::rename(&temp, &self.file).map_err(fail)
    }
}

/// The positions, even if a panic elsewhere poisoned the lock (they stay consistent: each
/// change is one insert, remove or assignment).
fn lock(acks: &Mutex<LogAcks>) -> std::sync::MutexGuard<'_, LogAcks> {
    acks.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
