//! What happened to the events: counters the publisher and its pump keep, read by
//! `/admin/events/stats` (and later exported as metrics).
//!
//! Every event accepted by [`Publisher::publish`](super::Publisher::publish) ends in exactly
//! one of: `published`, `replayed` (after a stay in the spool), `dropped_*` or `failed`; or is
//! still waiting (`spool_pending`, or the in-memory channel).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use serde::Serialize;

use super::circuit::CircuitState;

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Acknowledged by the sink on the first attempt.
    pub published: u64,
    /// Written to the disk spool (the sink was away or slow).
    pub spooled: u64,
    /// Acknowledged by the sink after a stay in the spool.
    pub replayed: u64,
    /// Dropped because the in-memory channel was full (or the publisher closed).
    pub dropped_channel_full: u64,
    /// Dropped because the spool was full (`on_full` says which ones).
    pub dropped_spool_full: u64,
    /// Refused by the sink, or lost to a disk error; each was logged.
    pub failed: u64,
    /// Events in the spool, not yet acknowledged.
    pub spool_pending: u64,
    /// Finished exchanges (and other events) waiting in the in-memory channel for the pump.
    pub queued: u64,
    /// The circuit breaker in front of the sink.
    pub circuit: CircuitState,
}

/// The live counters, shared by the publisher handles and the pump.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) dropped_channel_full: AtomicU64,
    pub(crate) dropped_spool_full: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) spool_pending: AtomicU64,
    circuit: AtomicU8,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_circuit(&self, state: CircuitState) {
        let code = match state {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::Draining => 2,
        };
        self.circuit.store(code, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            published: get(&self.published),
            spooled: get(&self.spooled),
            replayed: get(&self.replayed),
            dropped_channel_full: get(&self.dropped_channel_full),
            dropped_spool_full: get(&self.dropped_spool_full),
            failed: get(&self.failed),
            spool_pending: get(&self.spool_pending),
            queued: 0,
            circuit: match self.circuit.load(Ordering::Relaxed) {
                1 => CircuitState::Open,
                2 => CircuitState::Draining,
                _ => CircuitState::Closed,
            },
        }
    }
}

/// Lets a repeated warning through at most once per period, so a storm of drops is logged
/// (with its count) without flooding the log.
#[derive(Debug)]
pub(crate) struct Throttle {
    base: std::time::Instant,
    period_ms: u64,
    /// Milliseconds since `base` of the last warning let through, plus one (0: never).
    last: AtomicU64,
}

impl Throttle {
    pub(crate) fn new(period: std::time::Duration) -> Self {
        Self {
            base: std::time::Instant::now(),
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
        }
    }

    /// Whether a warning may be logged now.
    pub(crate) fn allow(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < self.period_ms {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}
