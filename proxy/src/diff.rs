//! Structured comparison of a legacy and a candidate response, and the learned noise baseline.
//!
//! `shadow` hands two [`Observed`] answers to [`compare`], which says where they differ as
//! a [`Comparison`]; [`classify`] weighs that against the route's [`NoiseBaseline`], learned
//! from the legacy side disagreeing with itself, and gives a [`Verdict`]. Everything here is
//! pure and synchronous: no IO, no clock, no locks. It runs off the hot path, but on every
//! mirrored request, so nothing in it is quadratic or unbounded: bodies are decoded up to
//! `max_body` (then compared by hash), kept differences are capped (all are counted), and a
//! baseline holds a bounded number of shapes. It never panics on what upstreams send.
//!
//! ## What is compared, and where a difference is reported
//!
//! | pointer | compared | values shown |
//! |---|---|---|
//! | `/status` | the status code | the two codes |
//! | `/headers/<name>` | each configured header, by meaning (see `headers`) | the values; cookie values redacted |
//! | `/body/<json pointer>` | JSON bodies, node by node (see `json`) | the two JSON values (large ones summarised) |
//! | `/body` | HTML (normalised, see `html`) or other text | excerpts around the first difference |
//! | `/body` | other types, undecodable or over-`max_body` bodies | `{len, sha256}`, plus `error` or `note` |
//!
//! Bodies are compared after undoing `Content-Encoding`: a gzip answer and an identity answer
//! with the same content are equal, and a body that fails to decode is itself a difference.
//! A value absent on one side is `None` (serialized as a missing key), which is how a missing
//! JSON key stays distinct from a `null` one. Latency is not compared here.
//!
//! Besides its pointer, each difference has a *shape*: the pointer with array indices as `*`.
//! Shapes are what the baseline learns and matches.

mod baseline;
mod body;
mod decode;
mod headers;
mod html;
mod json;
mod pointer;
mod report;
mod rules;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use bytes::Bytes;
use http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

pub use baseline::{Classification, NoiseBaseline, classify};
pub use rules::{DiffRules, RuleProblem, RulesError};

/// One response as the proxy received it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as received (possibly content-encoded), as far as it was captured.
    pub body: Bytes,
}

/// One place where the two answers differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Where: `/status`, `/headers/<name>`, `/body` or `/body/<json pointer>` (RFC 6901).
    pub pointer: String,
    /// The legacy side's value; `None` when absent there (a missing key, a header not sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<Value>,
    /// The candidate side's value; `None` when absent there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Value>,
    /// The pointer with array indices as `*`, what noise is learned and matched by.
    #[serde(skip)]
    shape: String,
}

/// Where two answers differ: the first `max_differences` differences in document order, and
/// how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// The differences kept, at most the route's `max_differences`.
    pub differences: Vec<Difference>,
    /// How many differences there were, kept or not (ignored ones aside).
    pub total: usize,
    /// How many differences `ignore` rules covered (neither kept nor in `total`).
    pub ignored: usize,
    /// Shapes of the differences past the cap, so classification still sees them.
    #[serde(skip)]
    unkept_shapes: BTreeSet<String>,
    /// Too many distinct shapes past the cap to remember.
    #[serde(skip)]
    unkept_overflow: bool,
}

/// How a comparison is judged (see [`classify`]). `/admin/diffs` also shows `skipped`, which
/// is `shadow`'s to say: no comparison took place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing differed.
    Equal,
    /// Everything that differed is learned noise or ignored by a rule.
    Noise,
    /// Something differed that the legacy side does not vary on: a likely bug.
    Regression,
}

impl Verdict {
    /// The lower-case name used in `/admin/diffs` and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "equal",
            Self::Noise => "noise",
            Self::Regression => "regression",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares a legacy answer with a candidate answer under a route's rules: status, the
/// configured headers, then the decoded body by content type.
pub fn compare(legacy: &Observed, candidate: &Observed, rules: &DiffRules) -> Comparison {
    let mut sink = report::Sink::new(rules);
    if legacy.status != candidate.status {
        sink.push_checked("/status", || {
            (Some(legacy.status.into()), Some(candidate.status.into()))
        });
    }
    headers::compare(&legacy.headers, &candidate.headers, &mut sink);
    body::compare(legacy, candidate, &mut sink);
    sink.finish()
}
