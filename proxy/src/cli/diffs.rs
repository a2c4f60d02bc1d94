//! `strangler diffs`: what shadowing has found so far, read from the running proxy's admin
//! API (`/admin/shadow` and `/admin/diffs`) and printed for people: per route the tallies,
//! whether the verdicts can be trusted yet, latency legacy vs candidate, then the recent
//! regressions pointer by pointer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::admin_api::{AdminApi, query_value};
use crate::shadow::CorpusCounts;

/// `GET /admin/shadow`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShadowPage {
    /// One summary per route with shadow state.
    pub routes: Vec<RouteSummary>,
}

/// One route's summary, as `/admin/shadow` shows it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RouteSummary {
    /// Route id.
    pub route: String,
    /// Comparisons that finished.
    pub compared: u64,
    /// Identical answers.
    pub equal: u64,
    /// Differences legacy also shows with itself.
    pub noise: u64,
    /// Real differences.
    pub regression: u64,
    /// Not compared, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// regression / compared.
    pub regression_rate: f64,
    /// Learning pairs behind the noise baseline.
    pub baseline_samples: u64,
    /// Latency percentiles, ms.
    pub latency: Latency,
    /// The mismatch corpus' counts, when capturing is on.
    pub corpus: Option<CorpusCounts>,
}

/// p50/p99 of both sides.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Legacy median, ms.
    pub legacy_p50_ms: f64,
    /// Legacy 99th percentile, ms.
    pub legacy_p99_ms: f64,
    /// Candidate median, ms.
    pub candidate_p50_ms: f64,
    /// Candidate 99th percentile, ms.
    pub candidate_p99_ms: f64,
}

/// `GET /admin/diffs`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiffsPage {
    /// Records, newest first.
    pub diffs: Vec<DiffRecord>,
}

/// One comparison record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiffRecord {
    /// Route id.
    pub route: String,
    /// Correlation id.
    pub correlation: String,
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// When, RFC 3339.
    pub at: String,
    /// The verdict.
    pub verdict: String,
    /// The kept differences.
    pub differences: Vec<DiffEntry>,
    /// All differences.
    pub total_differences: usize,
}

/// One difference.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiffEntry {
    /// Where.
    pub pointer: String,
    /// Legacy value (absent when legacy had none).
    pub legacy: Option<Value>,
    /// Candidate value.
    pub candidate: Option<Value>,
    /// Explained by the baseline or a rule.
    pub noise: bool,
}

/// Reads the running proxy's findings and prints them.
pub async fn diffs(
    config: &Path,
    admin: Option<&str>,
    route: Option<&str>,
    limit: usize,
) -> anyhow::Result<()> {
    let api = AdminApi::locate(config, admin)?;
    let shadow: ShadowPage = api.get("/admin/shadow").await?;
    let mut query = format!("/admin/diffs?verdict=regression&limit={limit}");
    if let Some(route) = route {
        query.push_str(&format!("&route={}", query_value(route)));
    }
    let recent: DiffsPage = api.get(&query).await?;
    if let Some(route) = route {
        if !shadow.routes.iter().any(|r| r.route == route) {
            let known: Vec<&str> = shadow.routes.iter().map(|r| r.route.as_str()).collect();
            anyhow::bail!(
                "no shadow findings for route `{route}` yet (routes with findings: {}); is it in shadow or canary mode, and has it had traffic?",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    print!("{}", render(&shadow, &recent, route));
    Ok(())
}

/// The report, as printed.
pub fn render(shadow: &ShadowPage, recent: &DiffsPage, route: Option<&str>) -> String {
    let mut out = String::new();
    let routes: Vec<&RouteSummary> = shadow
        .routes
        .iter()
        .filter(|r| route.is_none_or(|id| r.route == id))
        .collect();
    if routes.is_empty() {
        out.push_str("no shadow findings yet: no route in shadow or canary mode has had traffic\n");
        return out;
    }
    for (i, summary) in routes.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        summary_lines(&mut out, summary);
        let regressions: Vec<&DiffRecord> = recent
            .diffs
            .iter()
            .filter(|d| d.route == summary.route && d.verdict == "regression")
            .collect();
        if regressions.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  recent regressions, newest first:");
        for record in regressions {
            record_lines(&mut out, record);
        }
    }
    out
}

fn summary_lines(out: &mut String, s: &RouteSummary) {
    let _ = writeln!(
        out,
        "route {}: {} compared, {} equal, {} noise, {} regression ({:.1}%)",
        s.route,
        s.compared,
        s.equal,
        s.noise,
        s.regression,
        s.regression_rate * 100.0
    );
    let skipped: u64 = s.skipped.values().sum();
    if skipped > 0 {
        let reasons: Vec<String> = s.skipped.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(out, "  skipped    {skipped} ({})", reasons.join(", "));
    }
    let baseline = match s.baseline_samples {
        0 => "none yet, noise cannot be told apart from regressions".to_owned(),
        1 => "1 sample".to_owned(),
        n => format!("{n} samples"),
    };
    let _ = writeln!(out, "  baseline   {baseline}");
    if s.compared > 0 {
        let l = &s.latency;
        let _ = writeln!(
            out,
            "  latency    p50 legacy {:.1} ms, candidate {:.1} ms; p99 legacy {:.1} ms, candidate {:.1} ms",
            l.legacy_p50_ms, l.candidate_p50_ms, l.legacy_p99_ms, l.candidate_p99_ms
        );
    }
    if let Some(corpus) = &s.corpus {
        let dropped: u64 = corpus.dropped.values().sum();
        let mut line = format!("  corpus     {} captured", corpus.captured);
        if dropped > 0 {
            let reasons: Vec<String> = corpus
                .dropped
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = write!(line, ", {dropped} dropped ({})", reasons.join(", "));
        }
        let _ = writeln!(out, "{line}");
    }
}

fn record_lines(out: &mut String, record: &DiffRecord) {
    let _ = writeln!(
        out,
        "    {}  {} {}  (request {})",
        record.at, record.method, record.path, record.correlation
    );
    let _ = write!(out, "{}", pointer_lines(&record.differences, 6));
    let shown = record.differences.len();
    if record.total_differences > shown {
        let _ = writeln!(out, "      … and {} more", record.total_differences - shown);
    }
}

/// One line per difference, pointers aligned: `/body/price_cents   legacy 4999   candidate 5000`.
pub fn pointer_lines(differences: &[DiffEntry], indent: usize) -> String {
    let width = differences
        .iter()
        .map(|d| d.pointer.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for d in differences {
        let noise = if d.noise { "   (noise)" } else { "" };
        let _ = writeln!(
            out,
            "{:indent$}{:<width$}   legacy {}   candidate {}{noise}",
            "",
            d.pointer,
            show(d.legacy.as_ref()),
            show(d.candidate.as_ref()),
        );
    }
    out
}

/// A value on one line: compact JSON, long ones cut.
fn show(value: Option<&Value>) -> String {
    const MAX: usize = 60;
    let Some(value) = value else {
        return "(absent)".to_owned();
    };
    let text = value.to_string();
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHADOW: &str = r#"{"routes": [
        {"route": "feeds", "compared": 0, "equal": 0, "noise": 0, "regression": 0,
         "skipped": {}, "regression_rate": 0.0, "baseline_samples": 0,
         "latency": {"legacy_p50_ms": 0, "legacy_p99_ms": 0, "candidate_p50_ms": 0, "candidate_p99_ms": 0}},
        {"route": "products", "compared": 40, "equal": 30, "noise": 8, "regression": 2,
         "skipped": {"sampled_out": 5, "queue_full": 1}, "regression_rate": 0.05,
         "baseline_samples": 12,
         "latency": {"legacy_p50_ms": 3.14, "legacy_p99_ms": 10.2, "candidate_p50_ms": 2.0, "candidate_p99_ms": 9.0},
         "corpus": {"captured": 2, "dropped": {"queue_full": 1}}}
    ]}"#;

    const DIFFS: &str = r#"{"diffs": [
        {"route": "products", "correlation": "req-2", "method": "GET", "path": "/api/products/7",
         "at": "2025-01-01T00:00:02.000Z", "verdict": "regression",
         "differences": [
            {"pointer": "/body/price_cents", "legacy": 4999, "candidate": 5000, "noise": false},
            {"pointer": "/body/generated_at", "legacy": "a", "candidate": "b", "noise": true},
            {"pointer": "/body/sale", "legacy": true, "noise": false}
         ], "total_differences": 4,
         "latency": {}, "baseline_samples": 12}
    ]}"#;

    fn report(route: Option<&str>) -> String {
        let shadow: ShadowPage = serde_json::from_str(SHADOW).unwrap();
        let diffs: DiffsPage = serde_json::from_str(DIFFS).unwrap();
        render(&shadow, &diffs, route)
    }

    #[test]
    fn prints_summary_trust_latency_and_pointers() {
        let out = report(None);
        assert!(
            out.contains("route products: 40 compared, 30 equal, 8 noise, 2 regression (5.0%)"),
            "{out}"
        );
        assert!(
            out.contains("skipped    6 (queue_full 1, sampled_out 5)"),
            "{out}"
        );
        assert!(out.contains("baseline   12 samples"), "{out}");
        assert!(
            out.contains(
                "p50 legacy 3.1 ms, candidate 2.0 ms; p99 legacy 10.2 ms, candidate 9.0 ms"
            ),
            "{out}"
        );
        assert!(
            out.contains("corpus     2 captured, 1 dropped (queue_full 1)"),
            "{out}"
        );
        assert!(
            out.contains("2025-01-01T00:00:02.000Z  GET /api/products/7  (request req-2)"),
            "{out}"
        );
        assert!(
            out.contains("      /body/price_cents    legacy 4999   candidate 5000\n"),
            "{out}"
        );
        assert!(
            out.contains("/body/generated_at   legacy \"a\"   candidate \"b\"   (noise)"),
            "{out}"
        );
        assert!(
            out.contains("/body/sale           legacy true   candidate (absent)"),
            "{out}"
        );
        assert!(out.contains("… and 1 more"), "{out}");
        assert!(
            out.contains("route feeds: 0 compared")
                && out.contains("baseline   none yet, noise cannot be told apart"),
            "{out}"
        );
    }

    #[test]
    fn one_route_only() {
        let out = report(Some("feeds"));
        assert!(out.contains("route feeds"), "{out}");
        assert!(!out.contains("products"), "{out}");
    }

    #[test]
    fn nothing_yet() {
        let out = render(&ShadowPage::default(), &DiffsPage::default(), None);
        assert!(out.starts_with("no shadow findings yet"), "{out}");
    }

    #[test]
    fn long_values_are_cut() {
        let long = Value::String("x".repeat(200));
        let shown = show(Some(&long));
        assert!(
            shown.ends_with('…') && shown.chars().count() == 61,
            "{shown}"
        );
    }
}
