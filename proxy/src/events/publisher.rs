//! The publisher handle the proxy holds: takes events from the data path without ever
//! blocking or failing it, and owns the pump task that delivers them.
//!
//! [`Publisher::publish`] tries to put the event in the bounded channel; a full channel drops
//! the event and counts it (policy: drop newest and count; the data path never waits). A
//! finished client exchange goes through the channel as its facts
//! ([`Publisher::publish_exchange`]): its events are built by the pump, off the connection's
//! task. The pump stamps each event's source and, once it has delivered or spooled an event,
//! moves it into a small ring for `/admin/events/recent` (no copy on the way).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::exchange::Finished;
use super::pump::{Deliver, Limits, Outlet, Pump};
use super::sink::{Sink, SinkError, log};
use super::spool::Spool;
use super::stats::{Counters, Stats, Throttle};
use super::{Data, Event};
use crate::config::{BusConfig, BusKind};

/// Events kept for `/admin/events/recent`.
pub const RECENT: usize = 500;

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    /// The spool folder is unusable.
    #[error("cannot open the event spool: {0}; check [bus] spool")]
    Spool(#[from] super::segment::SegmentError),
    /// The event log folder is unusable.
    #[error("cannot open the event log: {0}; check [bus] path")]
    Log(#[from] SinkError),
}

/// A cheap, cloneable handle to the event publisher.
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The pump's channel; `None` when no bus is configured.
    tx: Option<mpsc::Sender<Pending>>,
    /// The source it stamps and the recent events (shared with the pump).
    intake: Arc<Intake>,
    /// The settings it started with (a reload cannot change them).
    bus: BusConfig,
    counters: Arc<Counters>,
    /// Stops the pump (which then flushes).
    stop: CancellationToken,
    /// Owns the pump task.
    tasks: TaskTracker,
    drop_warning: Throttle,
}

impl Publisher {
    /// A publisher that publishes nothing (`[bus] kind = "none"`).
    pub fn disabled() -> Self {
        Self::build(None, BusConfig::default(), Arc::default())
    }

    /// Starts publishing to the sink `bus` names (relative paths against `base_dir`): opens
    /// the log or the spool now (an unusable folder is an error), connects to a broker later
    /// (a broker that is down is not).
    pub fn start(bus: &BusConfig, base_dir: &Path) -> Result<Self, PublisherError> {
        match bus.kind {
            BusKind::None => Ok(Self::disabled()),
            BusKind::Log => {
                let sink = Sink::Log(Box::new(log::LogSink::open(bus, base_dir)?));
                let outlet = Outlet::new(bus.clone(), base_dir.to_owned(), Some(sink));
                Ok(Self::start_with(bus, outlet, None, Limits::default()))
            }
            BusKind::Nats | BusKind::Redis | BusKind::Kafka => {
                let spool = Spool::open(
                    &base_dir.join(&bus.spool),
                    log::options(&spool_segments(bus)),
                    bus.spool_max.bytes(),
                    bus.on_full,
                )?;
                let outlet = Outlet::new(bus.clone(), base_dir.to_owned(), None);
                Ok(Self::start_with(
                    bus,
                    outlet,
                    Some(spool),
                    Limits::default(),
                ))
            }
        }
    }

    /// Starts a pump delivering to `outlet` (tests pass a fake sink).
    pub(crate) fn start_with<D: Deliver>(
        bus: &BusConfig,
        outlet: D,
        spool: Option<Spool>,
        limits: Limits,
    ) -> Self {
        let (tx, rx) = mpsc::channel(bus.channel.max(1));
        let counters = Arc::new(Counters::default());
        let publisher = Self::build(Some(tx), bus.clone(), counters.clone());
        let pump = Pump::new(
            rx,
            publisher.inner.intake.clone(),
            outlet,
            spool,
            counters,
            publisher.inner.stop.clone(),
            bus.batch,
            limits,
        );
        publisher.inner.tasks.spawn(pump.run());
        tracing::info!(kind = ?bus.kind, "event publisher started");
        publisher
    }

    fn build(tx: Option<mpsc::Sender<Pending>>, bus: BusConfig, counters: Arc<Counters>) -> Self {
        Self {
            inner: Arc::new(Inner {
                tx,
                intake: Arc::new(Intake {
                    source: format!("strangler://{}", instance()),
                    recent: Mutex::new(VecDeque::new()),
                }),
                bus,
                counters,
                stop: CancellationToken::new(),
                tasks: TaskTracker::new(),
                drop_warning: Throttle::new(Duration::from_secs(10)),
            }),
        }
    }

    /// Whether events go anywhere; emitters may skip building them when not.
    pub fn is_enabled(&self) -> bool {
        self.inner.tx.is_some()
    }

    /// Whether every client exchange is published (`[bus] exchanges`, and a bus is set).
    pub fn publishes_exchanges(&self) -> bool {
        self.is_enabled() && self.inner.bus.exchanges
    }

    /// The sink kind it publishes to.
    pub fn kind(&self) -> BusKind {
        self.inner.bus.kind
    }

    /// The `source` it stamps: `strangler://<instance>`.
    pub fn source(&self) -> &str {
        &self.inner.intake.source
    }

    /// Hands `event` to the pump; never waits, never fails. A full channel drops the event
    /// and counts it (`dropped_channel_full`). An empty `source` becomes this publisher's.
    pub fn publish(&self, event: Event) {
        self.send(Pending::Event(event));
    }

    /// Hands a finished exchange to the pump, which builds its events; never waits, never
    /// fails. A full channel drops it, counting the events it would have made.
    pub(crate) fn publish_exchange(&self, finished: Finished) {
        self.send(Pending::Exchange(finished));
    }

    fn send(&self, pending: Pending) {
        let Some(tx) = &self.inner.tx else {
            return;
        };
        if let Err(TrySendError::Full(lost) | TrySendError::Closed(lost)) = tx.try_send(pending) {
            let counters = &self.inner.counters;
            let n = match &lost {
                Pending::Event(_) => 1,
                Pending::Exchange(finished) => finished.expected(),
            };
            Counters::add(&counters.dropped_channel_full, n);
            // Dropped here, on the data path, but only when the bus cannot keep up.
            drop(lost);
            if self.inner.drop_warning.allow() {
                tracing::warn!(
                    dropped = counters.snapshot().dropped_channel_full,
                    channel = self.inner.bus.channel,
                    "event channel full or closed; dropping events ([bus] channel)"
                );
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let mut stats = self.inner.counters.snapshot();
        stats.queued = self
            .inner
            .tx
            .as_ref()
            .map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as u64);
        stats
    }

    /// The last `limit` events the pump took (at most [`RECENT`]), oldest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let recent = self.inner.intake.lock_recent();
        let skip = recent.len().saturating_sub(limit);
        recent.iter().skip(skip).cloned().collect()
    }

    /// Told about the `[bus]` of a newly loaded configuration: says in the log that a change
    /// needs a restart (the running publisher keeps its settings).
    pub fn note_config(&self, bus: &BusConfig) {
        if *bus != self.inner.bus {
            tracing::warn!(
                "[bus] changed; restart strangler to apply it (events keep going where they went)"
            );
        }
    }

    /// Stops the pump: the channel is flushed to the sink or the spool (within a bound) and
    /// synced. Later events are dropped and counted. Safe to call more than once.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        // The pump bounds its own flush; this is a backstop.
        let bound = Limits::default().shutdown + Duration::from_secs(5);
        if tokio::time::timeout(bound, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("the event publisher did not stop in time");
        }
    }
}

/// What travels through the channel to the pump.
#[derive(Debug)]
pub(crate) enum Pending {
    /// An event its emitter built.
    Event(Event),
    /// A finished client exchange; the pump builds its events.
    Exchange(Finished),
}

/// What the publisher and its pump share: the source to stamp, and the recent events.
#[derive(Debug)]
pub(crate) struct Intake {
    /// `strangler://<instance>`, stamped on events that have no source.
    source: String,
    /// The last events the pump took, oldest first.
    recent: Mutex<VecDeque<Event>>,
}

impl Intake {
    /// The events of `pending`, source stamped, appended to `out` (run by the pump).
    pub(crate) fn unpack(&self, pending: impl IntoIterator<Item = Pending>, out: &mut Vec<Event>) {
        for item in pending {
            let start = out.len();
            match item {
                Pending::Event(event) => out.push(event),
                Pending::Exchange(finished) => out.extend(finished.events()),
            }
            for event in &mut out[start..] {
                if event.source.is_empty() {
                    event.source.clone_from(&self.source);
                }
            }
        }
    }

    /// Moves `events` into the recent ring (emptying the vector); the ones pushed out are
    /// dropped after the lock is released.
    pub(crate) fn remember(&self, events: &mut Vec<Event>) {
        let mut recent = self.lock_recent();
        for slot in events.iter_mut() {
            let evicted = if recent.len() >= RECENT {
                recent.pop_front()
            } else {
                None
            };
            let replacement = evicted.unwrap_or_else(placeholder);
            recent.push_back(std::mem::replace(slot, replacement));
        }
        drop(recent);
        events.clear();
    }

    fn lock_recent(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        // The ring is always consistent (one push or pop at a time).
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An empty event that allocates nothing, to swap into a vector slot.
fn placeholder() -> Event {
    Event {
        specversion: String::new(),
        id: String::new(),
        source: String::new(),
        kind: String::new(),
        time: String::new(),
        datacontenttype: String::new(),
        subject: None,
        correlationid: String::new(),
        data: Data::default(),
    }
}

/// Spool segments: a sixteenth of the cap (so `drop_oldest` frees little at a time), at most
/// the log's segment size.
fn spool_segments(bus: &BusConfig) -> BusConfig {
    let size = (bus.spool_max.bytes() / 16).clamp(4096, bus.segment_size.bytes().max(4096));
    BusConfig {
        segment_size: crate::config::ByteSize(size),
        ..bus.clone()
    }
}

/// This machine's name, for `source`.
fn instance() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let name = std::fs::read_to_string(p).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests;
