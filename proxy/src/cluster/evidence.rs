//! Fleet-wide evidence: every instance publishes, once per `[cluster] evidence_window`, the
//! counters of each route it tracks (over the route's gate window) to the bucket
//! `<bucket>-evidence`, key `<route>.<instance>`; every instance watches that bucket, and the
//! gates judge the sum of the fresh reports about the route's current revision.
//!
//! Each report is a whole snapshot of the instance's window, not a delta, so a decider that
//! just took over sums what it reads without any history. A report older than three windows
//! no longer counts (its instance is gone or cut off); the bucket's `max_age` of three
//! windows removes it from the store too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, Operation};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::kv::bounded;
use super::{Fleet, lock};
use crate::rollout::Counts;

/// Windows after which an instance's report expires.
const EXPIRY_WINDOWS: u32 = 3;

/// One instance's counters for one route, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The route.
    pub route: String,
    /// The instance.
    pub instance: String,
    /// The revision of the route's mode the counters were collected under.
    pub revision: u64,
    /// When it was published, ms since the Unix epoch.
    pub at_ms: u64,
    /// The counters over the route's gate window.
    pub counts: Counts,
}

/// The key of `instance`'s report on `route`: KV keys take `[-/_=.A-Za-z0-9]`, so the `:` of
/// a default instance name (host:port) becomes `=`, anything else foreign `_`.
pub fn report_key(route: &str, instance: &str) -> String {
    format!("{route}.{}", key_safe(instance))
}

/// `instance` as a KV key part: `:` becomes `=`, anything else foreign `_`.
pub fn key_safe(instance: &str) -> String {
    instance
        .chars()
        .map(|c| match c {
            ':' => '=',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '=') => c,
            _ => '_',
        })
        .collect()
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The sum of `local` (this instance's own counters, fresher than any report) and the
/// reports of other instances on `route` at `revision` heard within three `window`s of
/// `now_ms`; and the instances counted.
pub fn sum<'a>(
    local: &Counts,
    me: &str,
    reports: impl IntoIterator<Item = &'a Report>,
    route: &str,
    revision: u64,
    now_ms: u64,
    window: Duration,
) -> (Counts, Vec<String>) {
    let expiry = (window * EXPIRY_WINDOWS).as_millis() as u64;
    let mut total = local.clone();
    let mut counted = vec![me.to_owned()];
    for r in reports {
        let fresh = now_ms.saturating_sub(r.at_ms) <= expiry;
        if r.route == route && r.revision == revision && r.instance != me && fresh {
            total.add(&r.counts);
            counted.push(r.instance.clone());
        }
    }
    (total, counted)
}

impl Fleet {
    /// The fleet's counters for `route` at `revision`, given this instance's `local` ones
    /// (which are also kept for the next publication), and the instances they come from.
    pub fn pooled(&self, route: &str, revision: u64, local: Counts) -> (Counts, Vec<String>) {
        let heard = lock(&self.heard);
        let pooled = sum(
            &local,
            &self.instance,
            heard.values(),
            route,
            revision,
            now_ms(),
            self.settings.evidence_window,
        );
        drop(heard);
        let report = Report {
            route: route.to_owned(),
            instance: self.instance.clone(),
            revision,
            at_ms: 0,
            counts: local,
        };
        lock(&self.local).insert(route.to_owned(), report);
        pooled
    }

    /// Stops publishing for routes no longer judged.
    pub fn retain_evidence(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.local).retain(|route, _| keep(route));
    }

    /// The instances heard from within three windows, for the admin API.
    pub fn heard_instances(&self) -> Vec<String> {
        let expiry = (self.settings.evidence_window * EXPIRY_WINDOWS).as_millis() as u64;
        let now = now_ms();
        let mut out: Vec<String> = lock(&self.heard)
            .values()
            .filter(|r| now.saturating_sub(r.at_ms) <= expiry)
            .map(|r| r.instance.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// A store beside the modes' bucket, `<bucket>-<suffix>`, once NATS is reachable.
    pub(super) async fn aux_store(
        &self,
        suffix: &str,
        max_age: Duration,
        description: &str,
    ) -> Option<kv::Store> {
        let bucket = lock(&self.bucket).clone().filter(|b| b.is_connected())?;
        let name = format!("{}-{suffix}", self.settings.bucket);
        match bucket.aux(&name, max_age, description).await {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::warn!(error = %e, "cluster: cannot open `{name}`; trying again");
                None
            }
        }
    }

    /// Publishes this instance's counters every window and follows the other instances'
    /// until `shutdown`.
    pub async fn run_evidence(self: Arc<Self>, shutdown: CancellationToken) {
        let window = self.settings.evidence_window;
        loop {
            if let Some(store) = self
                .aux_store(
                    "evidence",
                    window * EXPIRY_WINDOWS,
                    "strangler promotion evidence, one key per route and instance",
                )
                .await
            {
                if self.follow_evidence(&store, window, &shutdown).await {
                    return;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(window) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Publishes and watches until the store fails (`false`) or `shutdown` (`true`).
    async fn follow_evidence(
        &self,
        store: &kv::Store,
        window: Duration,
        shutdown: &CancellationToken,
    ) -> bool {
        let watch = match bounded(store.watch_all()).await {
            Ok(Ok(watch)) => watch,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cluster: cannot watch the fleet's evidence");
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster: cannot watch the fleet's evidence");
                return false;
            }
        };
        tokio::pin!(watch);
        let mut tick = tokio::time::interval(window);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                entry = watch.next() => match entry {
                    Some(Ok(entry)) if entry.operation == Operation::Put => {
                        match serde_json::from_slice::<Report>(&entry.value) {
                            Ok(report) => {
                                lock(&self.heard).insert(entry.key.clone(), report);
                            }
                            Err(e) => tracing::warn!(key = %entry.key, error = %e, "cluster: ignoring an unreadable evidence report"),
                        }
                    }
                    Some(Ok(entry)) => {
                        lock(&self.heard).remove(&entry.key);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "cluster: the watch of the fleet's evidence failed");
                        return false;
                    }
                    None => return false,
                },
                _ = tick.tick() => {
                    if let Err(e) = self.publish(store).await {
                        tracing::warn!(error = %e, "cluster: cannot publish this instance's evidence; the fleet judges without it until it can");
                        return false;
                    }
                }
                () = shutdown.cancelled() => return true,
            }
        }
    }

    async fn publish(&self, store: &kv::Store) -> Result<(), String> {
        let reports: Vec<Report> = lock(&self.local).values().cloned().collect();
        let at_ms = now_ms();
        for report in reports {
            let key = report_key(&report.route, &self.instance);
            let value = serde_json::to_vec(&Report { at_ms, ..report })
                .map_err(|e| e.to_string())?
                .into();
            bounded(store.put(&key, value))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot write `{key}`: {e}"))?;
        }
        Ok(())
    }
}

/// Reports by key, as heard.
pub type Heard = BTreeMap<String, Report>;

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(samples: u64, span: f64) -> Counts {
        Counts {
            samples,
            legacy_requests: samples,
            candidate_requests: samples,
            span_secs: span,
            ..Counts::default()
        }
    }

    fn report(instance: &str, revision: u64, at_ms: u64, samples: u64) -> Report {
        Report {
            route: "api".into(),
            instance: instance.into(),
            revision,
            at_ms,
            counts: counts(samples, 20.0),
        }
    }

    #[test]
    fn the_fleet_sums_fresh_reports_on_the_same_revision() {
        let window = Duration::from_secs(10);
        let now = 1_000_000;
        let reports = [
            report("b", 5, now - 2_000, 10),
            report("c", 5, now - 29_000, 20),
            // Expired: not heard for more than three windows.
            report("d", 5, now - 31_000, 400),
            // An older stage's evidence does not count for the new one.
            report("e", 4, now, 800),
            // Our own published report is stale next to the local counters.
            report("a", 5, now, 1_600),
            Report {
                route: "other".into(),
                ..report("f", 5, now, 3_200)
            },
        ];
        let (total, counted) = sum(&counts(1, 30.0), "a", &reports, "api", 5, now, window);
        assert_eq!(total.samples, 31);
        assert_eq!(total.span_secs, 30.0, "the longest collection");
        assert_eq!(counted, ["a", "b", "c"]);
    }

    #[test]
    fn keys_take_any_instance_name() {
        assert_eq!(report_key("api", "edge-1"), "api.edge-1");
        assert_eq!(report_key("api", "host.lan:8080"), "api.host.lan=8080");
        assert_eq!(report_key("api", "a b"), "api.a_b");
    }
}
