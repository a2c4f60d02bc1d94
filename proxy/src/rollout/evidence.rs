//! Evidence for promotion gates: per route, what legacy and the candidate did over a sliding
//! window, in 10-second buckets (so memory per route is fixed whatever the traffic).
//!
//! Only routes with a `promote` table are recorded; the others cost one map lookup miss.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Width of one bucket.
pub const BUCKET: Duration = Duration::from_secs(10);
/// Buckets kept per route at most (an hour of 10 s buckets).
const MAX_BUCKETS: usize = 360;
/// Latency histogram bins: bin i holds latencies below 2^(i/4) × 0.05 ms (≈19 % wide).
const BINS: usize = 96;

/// Which side of a route answered, or was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The monolith.
    Legacy,
    /// The new service.
    Candidate,
}

/// Recorded evidence of every tracked route.
#[derive(Debug, Default)]
pub struct Evidence {
    routes: Mutex<HashMap<Arc<str>, Window>>,
}

/// The figures a gate judges, over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Shadow comparisons finished.
    pub samples: u64,
    /// Regressions among them.
    pub regressions: u64,
    /// Requests legacy answered (client exchanges).
    pub legacy_requests: u64,
    /// Of those, 5xx or proxy errors.
    pub legacy_errors: u64,
    /// Requests the candidate answered or was asked (exchanges and copies).
    pub candidate_requests: u64,
    /// Of those, 5xx, timeouts and connection failures.
    pub candidate_errors: u64,
    /// Legacy p99 time to response head, ms.
    pub legacy_p99_ms: f64,
    /// Candidate p99 time to response head, ms.
    pub candidate_p99_ms: f64,
    /// How long the evidence has been collected (since the route's last change), capped by the window.
    pub span_secs: f64,
}

impl Figures {
    /// Regressions / samples.
    pub fn regression_rate(&self) -> f64 {
        ratio(self.regressions, self.samples)
    }
    /// Candidate error rate minus legacy's.
    pub fn error_rate_delta(&self) -> f64 {
        ratio(self.candidate_errors, self.candidate_requests)
            - ratio(self.legacy_errors, self.legacy_requests)
    }
    /// Candidate p99 / legacy p99 (1.0 when either is unknown).
    pub fn p99_ratio(&self) -> f64 {
        if self.legacy_p99_ms > 0.0 && self.candidate_p99_ms > 0.0 {
            self.candidate_p99_ms / self.legacy_p99_ms
        } else {
            1.0
        }
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    buckets: VecDeque<Bucket>,
}

#[derive(Debug, Clone)]
struct Bucket {
    /// Index of the bucket since `started`.
    index: u64,
    samples: u64,
    regressions: u64,
    legacy_requests: u64,
    legacy_errors: u64,
    candidate_requests: u64,
    candidate_errors: u64,
    legacy_latency: [u32; BINS],
    candidate_latency: [u32; BINS],
}

impl Bucket {
    fn new(index: u64) -> Self {
        Self {
            index,
            samples: 0,
            regressions: 0,
            legacy_requests: 0,
            legacy_errors: 0,
            candidate_requests: 0,
            candidate_errors: 0,
            legacy_latency: [0; BINS],
            candidate_latency: [0; BINS],
        }
    }
}

impl Window {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            buckets: VecDeque::new(),
        }
    }

    fn current(&mut self) -> &mut Bucket {
        let index = (self.started.elapsed().as_secs_f64() / BUCKET.as_secs_f64()) as u64;
        if self.buckets.back().is_none_or(|b| b.index != index) {
            if self.buckets.len() == MAX_BUCKETS {
                self.buckets.pop_front();
            }
            self.buckets.push_back(Bucket::new(index));
        }
        // The bucket was just pushed if it was missing.
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    fn counts(&self, window: Duration) -> Counts {
        let elapsed = self.started.elapsed();
        let now = (elapsed.as_secs_f64() / BUCKET.as_secs_f64()) as u64;
        let span = (window.as_secs_f64() / BUCKET.as_secs_f64())
            .ceil()
            .max(1.0) as u64;
        let mut c = Counts {
            span_secs: elapsed.min(window).as_secs_f64(),
            ..Counts::default()
        };
        for b in self.buckets.iter().filter(|b| b.index + span > now) {
            c.samples += b.samples;
            c.regressions += b.regressions;
            c.legacy_requests += b.legacy_requests;
            c.legacy_errors += b.legacy_errors;
            c.candidate_requests += b.candidate_requests;
            c.candidate_errors += b.candidate_errors;
            for i in 0..BINS {
                c.legacy_latency[i] += u64::from(b.legacy_latency[i]);
                c.candidate_latency[i] += u64::from(b.candidate_latency[i]);
            }
        }
        c
    }
}

/// The raw counters behind [`Figures`], over a window: unlike figures they add up, so a
/// fleet's instances can publish theirs and the decider can sum them (cluster mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Shadow comparisons finished.
    pub samples: u64,
    /// Regressions among them.
    pub regressions: u64,
    /// Requests legacy answered.
    pub legacy_requests: u64,
    /// Of those, 5xx or proxy errors.
    pub legacy_errors: u64,
    /// Requests the candidate answered or was asked.
    pub candidate_requests: u64,
    /// Of those, 5xx, timeouts and connection failures.
    pub candidate_errors: u64,
    /// Legacy time-to-head histogram (sparse `[bin, count]` pairs when serialized).
    #[serde(with = "sparse")]
    pub legacy_latency: [u64; BINS],
    /// Candidate time-to-head histogram.
    #[serde(with = "sparse")]
    pub candidate_latency: [u64; BINS],
    /// How long they have been collected, capped by the window.
    pub span_secs: f64,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            samples: 0,
            regressions: 0,
            legacy_requests: 0,
            legacy_errors: 0,
            candidate_requests: 0,
            candidate_errors: 0,
            legacy_latency: [0; BINS],
            candidate_latency: [0; BINS],
            span_secs: 0.0,
        }
    }
}

impl Counts {
    /// Adds `other`'s counters; the span is the longest of the two (the evidence of a
    /// fleet has been collected as long as its longest-collecting instance).
    pub fn add(&mut self, other: &Counts) {
        self.samples += other.samples;
        self.regressions += other.regressions;
        self.legacy_requests += other.legacy_requests;
        self.legacy_errors += other.legacy_errors;
        self.candidate_requests += other.candidate_requests;
        self.candidate_errors += other.candidate_errors;
        for i in 0..BINS {
            self.legacy_latency[i] += other.legacy_latency[i];
            self.candidate_latency[i] += other.candidate_latency[i];
        }
        self.span_secs = self.span_secs.max(other.span_secs);
    }

    /// The figures a gate judges.
    pub fn figures(&self) -> Figures {
        Figures {
            samples: self.samples,
            regressions: self.regressions,
            legacy_requests: self.legacy_requests,
            legacy_errors: self.legacy_errors,
            candidate_requests: self.candidate_requests,
            candidate_errors: self.candidate_errors,
            legacy_p99_ms: p99(&self.legacy_latency),
            candidate_p99_ms: p99(&self.candidate_latency),
            span_secs: self.span_secs,
        }
    }
}

/// A histogram as its non-empty bins, `[[bin, count], ...]`: a few dozen bytes per route
/// instead of 96 numbers.
mod sparse {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::BINS;

    pub fn serialize<S: Serializer>(hist: &[u64; BINS], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            hist.iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (i, *n)),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u64; BINS], D::Error> {
        let pairs = Vec::<(usize, u64)>::deserialize(d)?;
        let mut hist = [0; BINS];
        for (i, n) in pairs {
            let bin = hist.get_mut(i).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "latency bin {i} out of range (0 to {})",
                    BINS - 1
                ))
            })?;
            *bin += n;
        }
        Ok(hist)
    }
}

fn bin(latency: Duration) -> usize {
    let ms = latency.as_secs_f64() * 1000.0;
    if ms <= 0.05 {
        return 0;
    }
    ((ms / 0.05).log2() * 4.0)
        .ceil()
        .clamp(0.0, (BINS - 1) as f64) as usize
}

fn bin_upper_ms(i: usize) -> f64 {
    0.05 * 2f64.powf(i as f64 / 4.0)
}

fn p99(hist: &[u64; BINS]) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (total as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bin_upper_ms(i);
        }
    }
    bin_upper_ms(BINS - 1)
}

impl Evidence {
    /// Starts (or restarts, after a change of stage) tracking `route`.
    pub fn track(&self, route: &Arc<str>) {
        self.lock().insert(route.clone(), Window::new());
    }

    /// Stops tracking routes not in `keep`.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|id, _| keep(id));
    }

    /// Whether `route` is tracked.
    pub fn tracks(&self, route: &str) -> bool {
        self.lock().contains_key(route)
    }

    /// Records a client exchange answered by `side` with `status` after `ttfb`.
    pub fn exchange(&self, route: &str, side: Side, status: u16, ttfb: Duration) {
        let mut routes = self.lock();
        let Some(window) = routes.get_mut(route) else {
            return;
        };
        let b = window.current();
        let error = status >= 500;
        match side {
            Side::Legacy => {
                b.legacy_requests += 1;
                b.legacy_errors += u64::from(error);
                b.legacy_latency[bin(ttfb)] += 1;
            }
            Side::Candidate => {
                b.candidate_requests += 1;
                b.candidate_errors += u64::from(error);
                b.candidate_latency[bin(ttfb)] += 1;
            }
        }
    }

    /// Records a finished shadow comparison; `candidate` is the copy's status and time to
    /// response head, `None` when the copy failed (timeout, connection error).
    pub fn comparison(&self, route: &str, regression: bool, candidate: Option<(u16, Duration)>) {
        let mut routes = self.lock();
        let Some(window) = routes.get_mut(route) else {
            return;
        };
        let b = window.current();
        b.candidate_requests += 1;
        match candidate {
            Some((status, ttfb)) => {
                b.samples += 1;
                b.regressions += u64::from(regression);
                b.candidate_errors += u64::from(status >= 500);
                b.candidate_latency[bin(ttfb)] += 1;
            }
            None => b.candidate_errors += 1,
        }
    }

    /// The figures of `route` over the last `window`.
    pub fn figures(&self, route: &str, window: Duration) -> Option<Figures> {
        self.counts(route, window).map(|c| c.figures())
    }

    /// The counters of `route` over the last `window`, to add up with other instances'.
    pub fn counts(&self, route: &str, window: Duration) -> Option<Counts> {
        self.lock().get(route).map(|w| w.counts(window))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Window>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn figures_over_the_window() {
        let e = Evidence::default();
        let r: Arc<str> = Arc::from("api");
        e.track(&r);
        for i in 0..100 {
            e.exchange(
                "api",
                Side::Legacy,
                if i < 2 { 500 } else { 200 },
                Duration::from_millis(10),
            );
            e.comparison("api", i == 0, Some((200, Duration::from_millis(20))));
        }
        e.exchange("untracked", Side::Legacy, 500, Duration::from_millis(1));
        let f = e.figures("api", Duration::from_secs(60)).unwrap();
        assert_eq!(f.samples, 100);
        assert!((f.regression_rate() - 0.01).abs() < 1e-9);
        assert!((f.error_rate_delta() + 0.02).abs() < 1e-9);
        assert!(
            f.p99_ratio() > 1.5 && f.p99_ratio() < 2.5,
            "{}",
            f.p99_ratio()
        );
        assert!(e.figures("untracked", Duration::from_secs(60)).is_none());

        tokio::time::advance(Duration::from_secs(120)).await;
        let later = e.figures("api", Duration::from_secs(60)).unwrap();
        assert_eq!(later.samples, 0, "old buckets fall out of the window");
        assert!((later.span_secs - 60.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn counts_add_up_and_survive_the_wire() {
        let e = Evidence::default();
        let r: Arc<str> = Arc::from("api");
        e.track(&r);
        for i in 0..10 {
            e.comparison("api", i == 0, Some((200, Duration::from_millis(5))));
            e.exchange("api", Side::Legacy, 200, Duration::from_millis(4));
        }
        let one = e.counts("api", Duration::from_secs(60)).unwrap();
        let wire = serde_json::to_string(&one).unwrap();
        assert!(wire.len() < 400, "histograms travel sparse: {wire}");
        let back: Counts = serde_json::from_str(&wire).unwrap();
        assert_eq!(back, one);
        let mut fleet = Counts::default();
        for _ in 0..3 {
            fleet.add(&back);
        }
        let f = fleet.figures();
        assert_eq!((f.samples, f.regressions, f.legacy_requests), (30, 3, 30));
        assert_eq!(f.candidate_p99_ms, one.figures().candidate_p99_ms);
        let bad = wire.replace("\"legacy_latency\":[[", "\"legacy_latency\":[[500,1],[");
        assert!(serde_json::from_str::<Counts>(&bad).is_err(), "{bad}");
    }

    #[test]
    fn latency_bins_are_monotonic_and_p99_is_an_upper_bound() {
        let mut last = 0;
        for ms in [0.01, 0.1, 1.0, 5.0, 50.0, 500.0, 5000.0] {
            let b = bin(Duration::from_secs_f64(ms / 1000.0));
            assert!(b >= last);
            assert!(bin_upper_ms(b) >= ms * 0.999 || b == BINS - 1, "{ms}");
            last = b;
        }
        let mut h = [0u64; BINS];
        h[bin(Duration::from_millis(3))] = 99;
        h[bin(Duration::from_millis(300))] = 1;
        assert!(p99(&h) >= 3.0 && p99(&h) < 4.0);
    }
}
