//! Collecting differences: the first `max_differences` are kept, all are counted, and the
//! shapes of those not kept are remembered (bounded) so that classification still sees them.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Comparison, DiffRules, Difference};

/// Distinct shapes of unkept differences remembered; past this a comparison is marked
/// overflowed and classifies as a regression (it cannot prove otherwise).
const UNKEPT_SHAPES_LIMIT: usize = 256;

/// A kept JSON value larger than this (serialized) is replaced by a summary.
const VALUE_LIMIT: usize = 1024;

/// Characters of context shown before the first difference in a text excerpt.
const BEFORE: usize = 40;

/// Characters shown from the first difference on.
const AFTER: usize = 80;

/// Where differences go while two responses are compared.
pub(super) struct Sink<'r> {
    /// The route's rules (for the ignore check of pointers outside a JSON walk).
    pub(super) rules: &'r DiffRules,
    comparison: Comparison,
}

impl<'r> Sink<'r> {
    pub(super) fn new(rules: &'r DiffRules) -> Self {
        Self {
            rules,
            comparison: Comparison::default(),
        }
    }

    /// Records a difference whose pointer has already been checked against `ignore`.
    /// `values` is only called for differences that are kept.
    pub(super) fn push(
        &mut self,
        pointer: &str,
        shape: &str,
        values: impl FnOnce() -> (Option<Value>, Option<Value>),
    ) {
        let c = &mut self.comparison;
        c.total += 1;
        if c.differences.len() < self.rules.max_differences {
            let (legacy, candidate) = values();
            c.differences.push(Difference {
                pointer: pointer.to_owned(),
                legacy,
                candidate,
                shape: shape.to_owned(),
            });
        } else if !c.unkept_overflow && !c.unkept_shapes.contains(shape) {
            if c.unkept_shapes.len() < UNKEPT_SHAPES_LIMIT {
                c.unkept_shapes.insert(shape.to_owned());
            } else {
                c.unkept_overflow = true;
            }
        }
    }

    /// Records a difference at a pointer outside a JSON body (`/status`, `/headers/…`,
    /// `/body`), where pointer and shape are the same, unless `ignore` covers it.
    pub(super) fn push_checked(
        &mut self,
        pointer: &str,
        values: impl FnOnce() -> (Option<Value>, Option<Value>),
    ) {
        if self.rules.ignores(pointer) {
            self.ignore();
        } else {
            self.push(pointer, pointer, values);
        }
    }

    /// Counts a difference that an `ignore` rule covers.
    pub(super) fn ignore(&mut self) {
        self.comparison.ignored += 1;
    }

    pub(super) fn finish(self) -> Comparison {
        self.comparison
    }
}

impl Comparison {
    /// Shapes of every difference, kept or not; `None` when too many to remember.
    pub(super) fn shapes(&self) -> Option<BTreeSet<&str>> {
        if self.unkept_overflow {
            return None;
        }
        let kept = self.differences.iter().map(|d| d.shape.as_str());
        Some(
            kept.chain(self.unkept_shapes.iter().map(String::as_str))
                .collect(),
        )
    }
}

/// A JSON value to keep in a difference: itself, or a summary if it is large.
pub(super) fn kept(value: &Value) -> Value {
    let text = value.to_string();
    if text.len() <= VALUE_LIMIT {
        return value.clone();
    }
    let what = match value {
        Value::Object(map) => format!("object of {} keys", map.len()),
        Value::Array(items) => format!("array of {} items", items.len()),
        Value::String(s) => format!("string of {} bytes", s.len()),
        _ => "value".to_owned(),
    };
    json!({ "summary": what, "excerpt": prefix(&text, 2 * AFTER) })
}

/// `{len, sha256}` of a body, the value shown when bodies are compared as bytes.
pub(super) fn fingerprint(body: &[u8]) -> Value {
    json!({ "len": body.len(), "sha256": hex::encode(Sha256::digest(body)) })
}

/// Excerpts of `a` and `b` around their first difference, with `…` where text was cut.
/// Whitespace runs are shown as one space.
pub(super) fn excerpts(a: &str, b: &str) -> (String, String) {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    // Both strings agree up to `at`, so a char boundary of one is one of the other.
    let at = floor_boundary(a, at);
    let start = floor_boundary(a, at.saturating_sub(BEFORE));
    (excerpt(a, start, at), excerpt(b, start, at))
}

fn excerpt(text: &str, start: usize, at: usize) -> String {
    let end = floor_boundary(text, at.saturating_add(AFTER));
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(text.get(start..end).unwrap_or_default());
    if end < text.len() {
        out.push('…');
    }
    out
}

/// The first `limit` bytes of `text` (at a char boundary), with `…` if cut.
pub(super) fn prefix(text: &str, limit: usize) -> String {
    let end = floor_boundary(text, limit);
    let mut out = text.get(..end).unwrap_or_default().to_owned();
    if end < text.len() {
        out.push('…');
    }
    out
}

/// The largest char boundary of `text` at or below `index`.
fn floor_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_around_the_first_difference() {
        let a = format!("{}price: 10 euros{}", "x".repeat(100), "y".repeat(200));
        let b = format!("{}price: 12 euros{}", "x".repeat(100), "y".repeat(200));
        let (ea, eb) = excerpts(&a, &b);
        assert!(ea.starts_with('…') && ea.ends_with('…'), "{ea}");
        assert!(
            ea.contains("price: 10") && eb.contains("price: 12"),
            "{ea} {eb}"
        );
        assert!(ea.chars().count() <= BEFORE + AFTER + 2);
    }

    #[test]
    fn excerpts_respect_char_boundaries() {
        let (a, b) = excerpts("ééé€", "ééé£");
        assert_eq!((a.as_str(), b.as_str()), ("ééé€", "ééé£"));
        let (a, b) = excerpts("", "x");
        assert_eq!((a.as_str(), b.as_str()), ("", "x"));
    }

    #[test]
    fn large_values_are_summarised() {
        let big = Value::Array((0..1000).map(Value::from).collect());
        let kept = kept(&big);
        assert_eq!(kept["summary"], "array of 1000 items");
        assert_eq!(super::kept(&json!(1)), json!(1));
    }
}
