//! One decider: the instance holding the lease key of the bucket `<bucket>-leader` is the
//! only one that promotes or rolls back. The bucket's `max_age` is the lease TTL, so a key
//! its holder stops refreshing disappears by itself (NATS 2.9 has no per-key TTL). Taking
//! the lease is a write expecting the key absent (revision 0, or the revision of the delete
//! marker a leader leaves when it stops cleanly); keeping it is a write expecting its own
//! last revision. Either fails when another instance got there first.
//!
//! The holder counts itself leader until the time it sent its last successful write plus
//! the TTL (less a margin): the server stamps the write later than that, so it cannot expire
//! before, and no other instance can take the key while this one still acts on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::kv::bounded;
use super::{Fleet, lock};

/// The key holding the lease.
const KEY: &str = "leader";

/// What the lease key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Nothing: never taken, or expired.
    Vacant,
    /// A delete marker at this revision (a leader that stopped cleanly).
    Released(u64),
    /// `holder`'s lease at `revision`.
    Held {
        /// The holding instance.
        holder: String,
        /// The key's revision.
        revision: u64,
    },
}

/// The write to try next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Take the lease, expecting the key at this revision (0: absent).
    Take(u64),
    /// Refresh the lease this instance holds at this revision.
    Refresh(u64),
    /// Someone else holds it: wait.
    Wait,
}

/// This instance's side of the lease: whether it holds it and until when.
#[derive(Debug, Default)]
pub struct Lease {
    /// The revision of our last write and when it lapses.
    held: Option<(u64, Instant)>,
    /// Who holds it, as last seen.
    holder: Option<String>,
}

impl Lease {
    /// Whether this instance leads at `now`.
    pub fn leads(&self, now: Instant) -> bool {
        self.held.is_some_and(|(_, until)| now < until)
    }

    /// The revision to refresh, while this instance leads at `now` (no read needed).
    pub fn refresh(&self, now: Instant) -> Option<u64> {
        self.held
            .filter(|(_, until)| now < *until)
            .map(|(revision, _)| revision)
    }

    /// What to write after reading `seen` as `me`.
    pub fn after_read(&mut self, seen: &Seen, me: &str) -> Step {
        match seen {
            Seen::Vacant => Step::Take(0),
            Seen::Released(revision) => Step::Take(*revision),
            // Our own key: a refresh came late locally, but the key still says us.
            Seen::Held { holder, revision } if holder == me => Step::Refresh(*revision),
            Seen::Held { holder, .. } => {
                self.held = None;
                self.holder = Some(holder.clone());
                Step::Wait
            }
        }
    }

    /// Our write was stored at `revision`; it was sent at `sent`.
    pub fn won(&mut self, revision: u64, sent: Instant, ttl: Duration, me: &str) {
        self.held = Some((revision, sent + ttl.saturating_sub(ttl / 10)));
        self.holder = Some(me.to_owned());
    }

    /// Our write was refused: someone else's write came first.
    pub fn lost(&mut self) {
        self.held = None;
        self.holder = None;
    }

    /// Who holds the lease, as last seen (ourselves included).
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }
}

/// The value of the lease key.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    instance: String,
    at: String,
}

impl Fleet {
    /// Whether this instance is the fleet's decider now.
    pub fn is_leader(&self) -> bool {
        lock(&self.lease).leads(Instant::now())
    }

    /// Who leads, as last seen.
    pub fn leader(&self) -> Option<String> {
        let lease = lock(&self.lease);
        match lease.holder() {
            Some(h) if h != self.instance || lease.leads(Instant::now()) => Some(h.to_owned()),
            _ => None,
        }
    }

    /// Takes, keeps or waits for the lease until `shutdown`; releases it then.
    pub async fn run_lease(self: Arc<Self>, shutdown: CancellationToken) {
        let ttl = self.settings.lease_ttl;
        let mut tick = tokio::time::interval(ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut store: Option<kv::Store> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => break,
            }
            if store.is_none() {
                store = self
                    .aux_store("leader", ttl, "strangler leader lease")
                    .await;
            }
            if let Some(s) = &store {
                let was = self.is_leader();
                if let Err(e) = self.lease_step(s, ttl).await {
                    tracing::warn!(error = %e, "cluster: cannot reach the leader lease");
                }
                let is = self.is_leader();
                if was != is {
                    tracing::warn!(instance = %self.instance, leads = is, "cluster: {}", if is { "this instance now leads the fleet: it alone promotes and rolls back" } else { "this instance no longer leads the fleet" });
                }
            }
        }
        let held = lock(&self.lease).refresh(Instant::now());
        if let (Some(revision), Some(s)) = (held, &store) {
            // A clean stop hands over at once instead of after the TTL.
            match bounded(s.delete_expect_revision(KEY, Some(revision))).await {
                Ok(Ok(())) => tracing::info!("cluster: released the leader lease"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cluster: cannot release the leader lease; another instance takes it when it expires")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: cannot release the leader lease; another instance takes it when it expires")
                }
            }
            lock(&self.lease).lost();
        }
    }

    async fn lease_step(&self, store: &kv::Store, ttl: Duration) -> Result<(), String> {
        let now = Instant::now();
        let refresh = lock(&self.lease).refresh(now);
        let step = match refresh {
            Some(revision) => Step::Refresh(revision),
            None => {
                let entry = bounded(store.entry(KEY))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let seen = match entry {
                    None => Seen::Vacant,
                    Some(e) if e.operation != Operation::Put => Seen::Released(e.revision),
                    Some(e) => Seen::Held {
                        holder: serde_json::from_slice::<Record>(&e.value)
                            .map(|r| r.instance)
                            .unwrap_or_else(|_| "an unreadable record".into()),
                        revision: e.revision,
                    },
                };
                lock(&self.lease).after_read(&seen, &self.instance)
            }
        };
        let expected = match step {
            Step::Take(r) | Step::Refresh(r) => r,
            Step::Wait => return Ok(()),
        };
        let record = Record {
            instance: self.instance.clone(),
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default().into();
        let sent = Instant::now();
        match bounded(store.update(KEY, value, expected))
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(revision) => {
                lock(&self.lease).won(revision, sent, ttl, &self.instance);
                Ok(())
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                lock(&self.lease).lost();
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(9);

    #[test]
    fn a_vacant_or_released_lease_is_taken_and_then_refreshed_by_revision() {
        let mut lease = Lease::default();
        let t0 = Instant::now();
        assert!(!lease.leads(t0));
        assert_eq!(lease.refresh(t0), None, "a follower reads first");
        assert_eq!(lease.after_read(&Seen::Vacant, "a"), Step::Take(0));
        assert_eq!(lease.after_read(&Seen::Released(7), "a"), Step::Take(7));
        lease.won(8, t0, TTL, "a");
        assert!(lease.leads(t0 + Duration::from_secs(1)));
        assert_eq!(lease.refresh(t0 + Duration::from_secs(3)), Some(8));
        assert_eq!(lease.holder(), Some("a"));
    }

    #[test]
    fn leadership_lapses_before_the_key_can_expire() {
        let mut lease = Lease::default();
        let sent = Instant::now();
        lease.won(3, sent, TTL, "a");
        // The server keeps the key at least TTL after `sent`; we stop acting earlier.
        assert!(lease.leads(sent + TTL - Duration::from_secs(1)));
        assert!(!lease.leads(sent + TTL));
        assert_eq!(lease.refresh(sent + TTL), None, "lapsed: read again");
        // Still ours in the store: refresh it by its revision.
        let seen = Seen::Held {
            holder: "a".into(),
            revision: 3,
        };
        assert_eq!(lease.after_read(&seen, "a"), Step::Refresh(3));
    }

    #[test]
    fn someone_elses_lease_is_waited_for_and_a_lost_write_steps_down() {
        let mut lease = Lease::default();
        let t0 = Instant::now();
        lease.won(3, t0, TTL, "a");
        let seen = Seen::Held {
            holder: "b".into(),
            revision: 4,
        };
        assert_eq!(lease.after_read(&seen, "a"), Step::Wait);
        assert!(!lease.leads(t0), "b holds it");
        assert_eq!(lease.holder(), Some("b"));
        lease.won(5, t0, TTL, "a");
        lease.lost();
        assert!(!lease.leads(t0));
        assert_eq!(lease.holder(), None);
    }
}
