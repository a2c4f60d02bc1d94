//! What shadowing has found, per route: counters, latency percentiles legacy vs candidate, and
//! the most recent comparison records. Bounded: a fixed number of records and latency samples
//! per route, however long the proxy runs.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::corpus::CorpusCounts;
use super::policy::SkipReason;

/// Records kept per route.
const RECENT: usize = 200;
/// Latency pairs kept per route for percentiles.
const LATENCIES: usize = 2048;

/// One compared (or skipped) exchange.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Route id.
    pub route: String,
    /// The exchange's correlation id (its request id).
    pub correlation: String,
    /// Request method.
    pub method: String,
    /// Request path and query.
    pub path: String,
    /// When the comparison finished, RFC 3339.
    pub at: String,
    /// `equal`, `noise`, `regression` or `skipped`.
    pub verdict: &'static str,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The first differences found.
    pub differences: Vec<Entry>,
    /// How many differences there were in all.
    pub total_differences: usize,
    /// Timings of both sides.
    pub latency: Latency,
    /// The candidate's status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_status: Option<u16>,
    /// Learning pairs the route's noise baseline had when this was judged.
    pub baseline_samples: u64,
}

/// One difference, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// RFC 6901 pointer: `/status`, `/headers/NAME` or `/body/...`.
    pub pointer: String,
    /// The legacy value; absent when legacy had none (a missing key, a header not sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<serde_json::Value>,
    /// The candidate value; absent when the candidate had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<serde_json::Value>,
    /// True when the baseline or an ignore rule explains it.
    pub noise: bool,
}

/// Both sides' timings in milliseconds (time to first byte, and to the end of the body).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Legacy time to response head.
    pub legacy_ttfb_ms: f64,
    /// Legacy time to the end of the body.
    pub legacy_total_ms: f64,
    /// Candidate time to response head.
    pub candidate_ttfb_ms: f64,
    /// Candidate time to the end of the body.
    pub candidate_total_ms: f64,
}

/// Milliseconds as a float, for JSON.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// Per-route tallies and recent records.
#[derive(Debug, Default)]
pub struct Summary {
    equal: u64,
    noise: u64,
    regression: u64,
    skipped: BTreeMap<SkipReason, u64>,
    recent: VecDeque<Record>,
    latencies: VecDeque<Latency>,
}

/// A route's summary as the admin API and CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryView {
    /// Route id.
    pub route: String,
    /// Comparisons that finished (equal + noise + regression).
    pub compared: u64,
    /// Identical answers.
    pub equal: u64,
    /// Answers that differ only where legacy disagrees with itself.
    pub noise: u64,
    /// Answers that differ where legacy is stable: real differences.
    pub regression: u64,
    /// Exchanges not compared, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// regression / compared.
    pub regression_rate: f64,
    /// Learning pairs behind the noise baseline; verdicts become trustworthy once it has some.
    pub baseline_samples: u64,
    /// Latency percentiles over the recent comparisons, in ms.
    pub latency: Percentiles,
    /// What became of the route's captured regressions (absent when capturing is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus: Option<CorpusCounts>,
}

/// p50/p99 of both sides' total times.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Legacy median.
    pub legacy_p50_ms: f64,
    /// Legacy 99th percentile.
    pub legacy_p99_ms: f64,
    /// Candidate median.
    pub candidate_p50_ms: f64,
    /// Candidate 99th percentile.
    pub candidate_p99_ms: f64,
}

impl Summary {
    /// Counts a skip that keeps no record (sampled out: far too many to keep).
    pub fn count_skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    /// Adds a finished record.
    pub fn add(&mut self, record: Record, reason: Option<SkipReason>) {
        match (record.verdict, reason) {
            (_, Some(reason)) => self.count_skip(reason),
            ("equal", None) => self.equal += 1,
            ("noise", None) => self.noise += 1,
            _ => self.regression += 1,
        }
        if reason.is_none() {
            if self.latencies.len() == LATENCIES {
                self.latencies.pop_front();
            }
            self.latencies.push_back(record.latency);
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(record);
    }

    /// The newest records first, at most `limit`, optionally only those with `verdict`.
    pub fn recent(&self, limit: usize, verdict: Option<&str>) -> Vec<Record> {
        self.recent
            .iter()
            .rev()
            .filter(|r| verdict.is_none_or(|v| r.verdict == v))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The tallies as shown to people.
    pub fn view(&self, route: &str, baseline_samples: u64) -> SummaryView {
        let compared = self.equal + self.noise + self.regression;
        let pick = |f: fn(&Latency) -> f64| {
            let mut v: Vec<f64> = self.latencies.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            (percentile(&v, 0.50), percentile(&v, 0.99))
        };
        let (legacy_p50_ms, legacy_p99_ms) = pick(|l| l.legacy_total_ms);
        let (candidate_p50_ms, candidate_p99_ms) = pick(|l| l.candidate_total_ms);
        SummaryView {
            route: route.to_owned(),
            compared,
            equal: self.equal,
            noise: self.noise,
            regression: self.regression,
            skipped: self.skipped.iter().map(|(r, n)| (r.as_str(), *n)).collect(),
            regression_rate: if compared == 0 {
                0.0
            } else {
                self.regression as f64 / compared as f64
            },
            baseline_samples,
            latency: Percentiles {
                legacy_p50_ms,
                legacy_p99_ms,
                candidate_p50_ms,
                candidate_p99_ms,
            },
            corpus: None,
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Now as RFC 3339 with milliseconds (UTC).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verdict: &'static str, total_ms: f64) -> Record {
        Record {
            route: "r".into(),
            correlation: "c".into(),
            method: "GET".into(),
            path: "/".into(),
            at: now_rfc3339(),
            verdict,
            reason: None,
            differences: Vec::new(),
            total_differences: 0,
            latency: Latency {
                legacy_total_ms: total_ms,
                candidate_total_ms: total_ms * 2.0,
                ..Latency::default()
            },
            candidate_status: Some(200),
            baseline_samples: 0,
        }
    }

    #[test]
    fn tallies_and_bounds() {
        let mut s = Summary::default();
        for i in 0..500 {
            s.add(
                record(
                    if i % 10 == 0 { "regression" } else { "equal" },
                    f64::from(i),
                ),
                None,
            );
        }
        s.count_skip(SkipReason::SampledOut);
        let v = s.view("r", 3);
        assert_eq!(v.compared, 500);
        assert_eq!(v.regression, 50);
        assert!((v.regression_rate - 0.1).abs() < 1e-9);
        assert_eq!(v.skipped["sampled_out"], 1);
        assert_eq!(s.recent(1000, None).len(), RECENT);
        assert!(
            s.recent(5, Some("regression"))
                .iter()
                .all(|r| r.verdict == "regression")
        );
        assert!(v.latency.candidate_p50_ms > v.latency.legacy_p50_ms);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }
}
