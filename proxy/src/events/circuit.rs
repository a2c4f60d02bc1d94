//! The circuit breaker in front of the sink: after a failure, stop calling the broker for a
//! while (exponential backoff with jitter), then probe with one batch.
//!
//! Jitter (a random share of the delay) keeps many proxies that lost the same broker from
//! probing it in lockstep when it comes back.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// How long the circuit stays open: from `min`, doubling per failed probe, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// After the first failure.
    pub min: Duration,
    /// At most.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

/// The breaker's state, as `/admin/events/stats` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// The sink takes events as they come.
    #[default]
    Closed,
    /// The sink failed; events go to the spool until a probe succeeds.
    Open,
    /// A probe succeeded; the spool is being sent, oldest first, before new events.
    Draining,
}

/// The breaker.
#[derive(Debug)]
pub(crate) struct Circuit {
    backoff: Backoff,
    state: CircuitState,
    /// Failed attempts in a row.
    failures: u32,
    /// While open: when to probe.
    retry_at: Option<Instant>,
}

impl Circuit {
    pub(crate) fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            state: CircuitState::Closed,
            failures: 0,
            retry_at: None,
        }
    }

    pub(crate) fn state(&self) -> CircuitState {
        self.state
    }

    /// While open, the time of the next probe.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| self.state == CircuitState::Open)
    }

    /// A delivery failed: open (again), with a longer wait. Returns the wait.
    pub(crate) fn failure(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        let base = self
            .backoff
            .min
            .saturating_mul(factor)
            .min(self.backoff.max);
        // Full jitter on the upper half: between base/2 and base.
        let half = base / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        let wait = half + jitter;
        self.failures = self.failures.saturating_add(1);
        self.state = CircuitState::Open;
        self.retry_at = Some(Instant::now() + wait);
        wait
    }

    /// A delivery succeeded while events wait in the spool: send them next.
    pub(crate) fn draining(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.state = CircuitState::Draining;
    }

    /// The spool is empty and the sink healthy.
    pub(crate) fn close(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.state = CircuitState::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut circuit = Circuit::new(Backoff::default());
        let waits: Vec<Duration> = (0..12).map(|_| circuit.failure()).collect();
        assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(100));
        assert!(waits[3] >= Duration::from_millis(400) && waits[3] <= Duration::from_millis(800));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(30)));
        assert!(waits[11] >= Duration::from_secs(15));
        assert_eq!(circuit.state(), CircuitState::Open);
        assert!(circuit.retry_at().is_some());
        circuit.draining();
        assert_eq!(circuit.retry_at(), None);
        assert!(circuit.failure() <= Duration::from_millis(100));
    }
}
