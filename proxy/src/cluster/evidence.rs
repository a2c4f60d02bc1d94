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

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::board::{Board, is_fresh};
use super::{Fleet, lock};
use crate::rollout::Counts;

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
    let mut total = local.clone();
    let mut counted = vec![me.to_owned()];
    for r in reports {
        let fresh = is_fresh(r.at_ms, now_ms, window);
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
        let now = now_ms();
        let window = self.settings.evidence_window;
        let mut out: Vec<String> = lock(&self.heard)
            .values()
            .filter(|r| is_fresh(r.at_ms, now, window))
            .map(|r| r.instance.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Publishes this instance's counters every window and follows the other instances'
    /// until `shutdown`.
    pub async fn run_evidence(self: Arc<Self>, shutdown: CancellationToken) {
        let board = Board {
            suffix: "evidence",
            description: "strangler promotion evidence, one key per route and instance",
            what: "the fleet's evidence",
            unpublished: "the fleet judges without this instance until it can",
            heard: &self.heard,
            nudge: None,
        };
        self.run_board(board, &shutdown, || self.evidence_entries())
            .await;
    }

    /// This instance's reports, stamped now, as (key, JSON).
    fn evidence_entries(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let reports: Vec<Report> = lock(&self.local).values().cloned().collect();
        let at_ms = now_ms();
        reports
            .into_iter()
            .map(|report| {
                let key = report_key(&report.route, &self.instance);
                let value =
                    serde_json::to_vec(&Report { at_ms, ..report }).map_err(|e| e.to_string())?;
                Ok((key, value))
            })
            .collect()
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
