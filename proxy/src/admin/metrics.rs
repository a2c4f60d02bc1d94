//! `GET /metrics`: Prometheus text exposition (format 0.0.4) with conventional names and
//! units.
//!
//! The data path only bumps atomics in a per-route record found through an `ArcSwap` map
//! (no lock, no allocation per request); everything else (shadow tallies, bus counters,
//! reloads, route modes) is read from its owner when scraped.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::RouteMode;

/// Latency histogram bucket bounds, seconds.
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Which side answered, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// The monolith.
    Legacy,
    /// The new service.
    Extracted,
}

/// Request counters and latency histograms per route and side.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: ArcSwap<HashMap<Arc<str>, Arc<RouteMetrics>>>,
    /// Requests no route matched.
    unmatched: RouteMetrics,
}

/// One route's counters.
#[derive(Debug, Default)]
pub struct RouteMetrics {
    sides: [SideMetrics; 2],
}

#[derive(Debug, Default)]
struct SideMetrics {
    /// By status class 1xx..5xx (index 0..4).
    classes: [AtomicU64; 5],
    latency: Histogram,
}

/// A latency histogram over fixed bounds: atomics only, so the data path can observe into it
/// without a lock; made cumulative when rendered.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); beyond the last bound only `count` grows.
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    /// Sum of latencies in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes the `_bucket`, `_sum` and `_count` samples of `name` with `labels` (nothing
    /// while empty, as for the other families).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let count = self.count();
        if count == 0 {
            return;
        }
        let mut cumulative = 0;
        for (i, bound) in BOUNDS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Writes one histogram family: `rows` are (labels, histogram); empty ones are left out.
pub fn histograms(out: &mut String, name: &str, help: &str, rows: &[(String, &Histogram)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (labels, histogram) in rows {
        histogram.render(out, name, labels);
    }
}

impl Metrics {
    /// Makes sure every route id has a record (kept across reloads).
    pub fn sync_routes<'a>(&self, ids: impl Iterator<Item = &'a Arc<str>>) {
        let current = self.routes.load();
        let mut next: HashMap<Arc<str>, Arc<RouteMetrics>> = HashMap::new();
        for id in ids {
            let m = current.get(id).cloned().unwrap_or_default();
            next.insert(id.clone(), m);
        }
        self.routes.store(Arc::new(next));
    }

    /// Counts one answered exchange.
    pub fn exchange(&self, route: Option<&str>, side: Answered, status: u16, latency: Duration) {
        let routes = self.routes.load();
        let record = match route.and_then(|r| routes.get(r)) {
            Some(r) => &**r,
            None => &self.unmatched,
        };
        let s = &record.sides[side as usize];
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        s.classes[class].fetch_add(1, Ordering::Relaxed);
        s.latency.observe(latency);
    }

    /// Renders the request metrics; `modes` gives each route's mode for the mode label.
    pub fn render_requests(&self, out: &mut String, modes: &HashMap<&str, RouteMode>) {
        let routes = self.routes.load();
        let mut ids: Vec<&Arc<str>> = routes.keys().collect();
        ids.sort();
        let _ = writeln!(
            out,
            "# HELP strangler_requests_total Client requests answered, by route, mode, side and status class."
        );
        let _ = writeln!(out, "# TYPE strangler_requests_total counter");
        let mut rows: Vec<(&str, &str, &RouteMetrics)> = ids
            .iter()
            .map(|id| {
                (
                    &***id,
                    modes.get(&***id).map_or("unknown", |m| m.as_str()),
                    &*routes[*id],
                )
            })
            .collect();
        rows.push(("", "default", &self.unmatched));
        for (route, mode, m) in &rows {
            for (side, name) in [(0, "legacy"), (1, "extracted")] {
                for (class, n) in m.sides[side].classes.iter().enumerate() {
                    let n = n.load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "strangler_requests_total{{route=\"{}\",mode=\"{mode}\",side=\"{name}\",status_class=\"{}xx\"}} {n}",
                            escape(route),
                            class + 1
                        );
                    }
                }
            }
        }
        let latencies: Vec<(String, &Histogram)> = rows
            .iter()
            .flat_map(|(route, _, m)| {
                [(0, "legacy"), (1, "extracted")].map(|(side, name)| {
                    let labels = format!("route=\"{}\",side=\"{name}\"", escape(route));
                    (labels, &m.sides[side].latency)
                })
            })
            .collect();
        histograms(
            out,
            "strangler_request_duration_seconds",
            "Time to the response head, by route and side.",
            &latencies,
        );
    }
}

/// Writes one metric family of plain samples.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Escapes a label value (backslash, quote, newline).
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_render() {
        let m = Metrics::default();
        let id: Arc<str> = Arc::from("api");
        m.sync_routes([&id].into_iter());
        m.exchange(Some("api"), Answered::Legacy, 200, Duration::from_millis(3));
        m.exchange(
            Some("api"),
            Answered::Extracted,
            503,
            Duration::from_millis(30),
        );
        m.exchange(None, Answered::Legacy, 404, Duration::from_millis(1));
        let mut out = String::new();
        m.render_requests(&mut out, &HashMap::from([("api", RouteMode::Canary)]));
        assert!(out.contains(r#"strangler_requests_total{route="api",mode="canary",side="legacy",status_class="2xx"} 1"#), "{out}");
        assert!(out.contains(r#"side="extracted",status_class="5xx"} 1"#));
        assert!(out.contains(r#"strangler_requests_total{route="",mode="default",side="legacy",status_class="4xx"} 1"#));
        assert!(out.contains(
            r#"strangler_request_duration_seconds_bucket{route="api",side="legacy",le="0.005"} 1"#
        ));
        assert!(out.contains(
            r#"strangler_request_duration_seconds_count{route="api",side="extracted"} 1"#
        ));
        // Counters survive a reload that keeps the route.
        m.sync_routes([&id].into_iter());
        let mut again = String::new();
        m.render_requests(&mut again, &HashMap::new());
        assert!(again.contains(r#"status_class="2xx"} 1"#));
    }

    #[test]
    fn a_histogram_family_is_cumulative_and_leaves_out_empty_rows() {
        let used = Histogram::default();
        used.observe(Duration::from_micros(700));
        used.observe(Duration::from_millis(20));
        used.observe(Duration::from_secs(60));
        let empty = Histogram::default();
        let mut out = String::new();
        histograms(
            &mut out,
            "x_seconds",
            "Help.",
            &[
                ("route=\"a\"".to_owned(), &used),
                ("route=\"b\"".to_owned(), &empty),
            ],
        );
        assert!(out.starts_with("# HELP x_seconds Help.\n# TYPE x_seconds histogram\n"));
        assert!(
            out.contains(r#"x_seconds_bucket{route="a",le="0.0005"} 0"#),
            "{out}"
        );
        assert!(out.contains(r#"x_seconds_bucket{route="a",le="0.001"} 1"#));
        assert!(out.contains(r#"x_seconds_bucket{route="a",le="0.025"} 2"#));
        assert!(out.contains(r#"x_seconds_bucket{route="a",le="10"} 2"#));
        assert!(out.contains(r#"x_seconds_bucket{route="a",le="+Inf"} 3"#));
        assert!(out.contains(r#"x_seconds_sum{route="a"} 60.0207"#));
        assert!(out.contains(r#"x_seconds_count{route="a"} 3"#));
        assert!(!out.contains(r#"route="b""#));
        assert_eq!(used.count(), 3);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
