//! JSON bodies: a walk over both trees that reports each difference at its RFC 6901 pointer.
//!
//! Objects are compared key by key (order never matters; a missing key and a `null` value are
//! different things). Arrays are compared index by index, or as multisets where an
//! `unordered` rule says so: each element is reduced to a hash of its canonical form (sorted
//! keys, numbers by value, ignored parts left out), the hashes are matched, and the elements
//! left over on either side are reported at their own index with the other side absent.
//! Multiset matching is exact: the numeric and timestamp tolerances apply to the ordered walk
//! only. Numbers compare by value (`1` equals `1.0`), within the tolerances. Two strings that
//! both parse as RFC 3339 timestamps compare as instants, within the timestamp tolerance. Any
//! other pair of different types is a difference at that pointer (`1` vs `"1"`).
//!
//! `ignore` and `unordered` patterns are followed as the walk descends: each node carries the
//! patterns whose leading segments match its path, so a node costs nothing when none do.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DiffRules;
use super::pointer::push_segment;
use super::report::{Sink, kept};
use super::rules::Purpose;

/// Compares two parsed JSON bodies, reporting under `/body`.
pub(super) fn compare(legacy: &Value, candidate: &Value, sink: &mut Sink<'_>) {
    let rules = sink.rules;
    let live: Vec<usize> = (0..rules.rules.len())
        .filter(|&i| step_accepts(rules, i, 0, Segment::Key("body")))
        .collect();
    let mut walk = Walk {
        rules,
        sink,
        pointer: String::from("/body"),
        shape: String::from("/body"),
    };
    walk.visit(Some(legacy), Some(candidate), &live, 1);
}

/// A step of the walk: into an object by key or into an array by index.
#[derive(Debug, Clone, Copy)]
enum Segment<'v> {
    Key(&'v str),
    Index(usize),
}

/// Whether step `depth` of rule `rule` accepts `segment`.
fn step_accepts(rules: &DiffRules, rule: usize, depth: usize, segment: Segment<'_>) -> bool {
    let Some(step) = rules
        .rules
        .get(rule)
        .and_then(|r| r.pattern.steps.get(depth))
    else {
        return false;
    };
    match segment {
        Segment::Key(key) => step.accepts(key),
        Segment::Index(i) => step.accepts(&i.to_string()),
    }
}

/// The rules among `live` (matched on `depth` segments) that end at this node.
fn ends_here(rules: &DiffRules, live: &[usize], depth: usize, purpose: Purpose) -> bool {
    live.iter().any(|&i| {
        rules
            .rules
            .get(i)
            .is_some_and(|r| r.purpose == purpose && r.pattern.steps.len() == depth)
    })
}

/// The rules among `live` that still match one segment further down.
fn descend(rules: &DiffRules, live: &[usize], depth: usize, segment: Segment<'_>) -> Vec<usize> {
    live.iter()
        .copied()
        .filter(|&i| step_accepts(rules, i, depth, segment))
        .collect()
}

/// The state of one walk: where it is, and where differences go.
struct Walk<'s, 'r> {
    rules: &'r DiffRules,
    sink: &'s mut Sink<'r>,
    /// The pointer of the current node.
    pointer: String,
    /// The pointer with array indices as `*`.
    shape: String,
}

impl Walk<'_, '_> {
    /// Compares the values at the current node (`None`: absent on that side); `live` are the
    /// rules that match its `depth` path segments.
    fn visit(&mut self, a: Option<&Value>, b: Option<&Value>, live: &[usize], depth: usize) {
        if ends_here(self.rules, live, depth, Purpose::Ignore) {
            if a != b {
                self.sink.ignore();
            }
            return;
        }
        match (a, b) {
            (Some(a), Some(b)) => self.node(a, b, live, depth),
            _ => self.report(a, b),
        }
    }

    fn node(&mut self, a: &Value, b: &Value, live: &[usize], depth: usize) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (key, va) in x {
                    self.child(Segment::Key(key), Some(va), y.get(key), live, depth);
                }
                for (key, vb) in y {
                    if !x.contains_key(key) {
                        self.child(Segment::Key(key), None, Some(vb), live, depth);
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                if ends_here(self.rules, live, depth, Purpose::Unordered) {
                    self.unordered(x, y, live, depth);
                } else {
                    for i in 0..x.len().max(y.len()) {
                        self.child(Segment::Index(i), x.get(i), y.get(i), live, depth);
                    }
                }
            }
            (Value::Number(x), Value::Number(y)) => {
                if !numbers_equal(x, y, self.rules) {
                    self.report(Some(a), Some(b));
                }
            }
            (Value::String(x), Value::String(y)) => {
                if x != y && !same_instant(x, y, self.rules) {
                    self.report(Some(a), Some(b));
                }
            }
            _ => {
                if a != b {
                    self.report(Some(a), Some(b));
                }
            }
        }
    }

    fn child(
        &mut self,
        segment: Segment<'_>,
        a: Option<&Value>,
        b: Option<&Value>,
        live: &[usize],
        depth: usize,
    ) {
        let (pointer_len, shape_len) = (self.pointer.len(), self.shape.len());
        match segment {
            Segment::Key(key) => {
                push_segment(&mut self.pointer, key);
                push_segment(&mut self.shape, key);
            }
            Segment::Index(i) => {
                push_segment(&mut self.pointer, &i.to_string());
                self.shape.push_str("/*");
            }
        }
        let next = descend(self.rules, live, depth, segment);
        self.visit(a, b, &next, depth + 1);
        self.pointer.truncate(pointer_len);
        self.shape.truncate(shape_len);
    }

    fn report(&mut self, a: Option<&Value>, b: Option<&Value>) {
        self.sink
            .push(&self.pointer, &self.shape, || (a.map(kept), b.map(kept)));
    }

    /// Multiset comparison: match elements by canonical hash, report the leftovers.
    fn unordered(&mut self, x: &[Value], y: &[Value], live: &[usize], depth: usize) {
        let mut pool: HashMap<u64, Vec<usize>> = HashMap::with_capacity(y.len());
        for (j, v) in y.iter().enumerate().rev() {
            let key = fingerprint(
                self.rules,
                v,
                &descend_index(self.rules, live, depth, j),
                depth + 1,
            );
            pool.entry(key).or_default().push(j);
        }
        let mut matched = vec![false; y.len()];
        let mut leftover = Vec::new();
        for (i, v) in x.iter().enumerate() {
            let key = fingerprint(
                self.rules,
                v,
                &descend_index(self.rules, live, depth, i),
                depth + 1,
            );
            match pool.get_mut(&key).and_then(Vec::pop) {
                Some(j) => {
                    if let Some(m) = matched.get_mut(j) {
                        *m = true;
                    }
                }
                None => leftover.push(i),
            }
        }
        for i in leftover {
            self.child(Segment::Index(i), x.get(i), None, live, depth);
        }
        for (j, done) in matched.iter().enumerate() {
            if !done {
                self.child(Segment::Index(j), None, y.get(j), live, depth);
            }
        }
    }
}

fn descend_index(rules: &DiffRules, live: &[usize], depth: usize, i: usize) -> Vec<usize> {
    descend(rules, live, depth, Segment::Index(i))
}

/// A hash of `value`'s canonical form: object keys sorted, numbers by value, unordered
/// arrays as sorted element hashes, ignored parts left out. `live`/`depth` locate `value`.
fn fingerprint(rules: &DiffRules, value: &Value, live: &[usize], depth: usize) -> u64 {
    let mut h = DefaultHasher::new();
    match value {
        Value::Null => 0u8.hash(&mut h),
        Value::Bool(b) => (1u8, b).hash(&mut h),
        Value::Number(n) => (2u8, NumberKey::of(n)).hash(&mut h),
        Value::String(s) => (3u8, s).hash(&mut h),
        Value::Array(items) => {
            let mut parts: Vec<u64> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let next = descend_index(rules, live, depth, i);
                if !ends_here(rules, &next, depth + 1, Purpose::Ignore) {
                    parts.push(fingerprint(rules, item, &next, depth + 1));
                }
            }
            if ends_here(rules, live, depth, Purpose::Unordered) {
                parts.sort_unstable();
            }
            (4u8, parts).hash(&mut h);
        }
        Value::Object(map) => {
            let mut parts: Vec<(&str, u64)> = Vec::with_capacity(map.len());
            for (key, item) in map {
                let next = descend(rules, live, depth, Segment::Key(key));
                if !ends_here(rules, &next, depth + 1, Purpose::Ignore) {
                    parts.push((key, fingerprint(rules, item, &next, depth + 1)));
                }
            }
            parts.sort_unstable();
            (5u8, parts).hash(&mut h);
        }
    }
    h.finish()
}

/// A number by value: `1`, `1.0` and `-0.0`/`0` hash alike.
#[derive(Hash)]
enum NumberKey {
    Int(i128),
    Float(u64),
}

impl NumberKey {
    fn of(n: &Number) -> Self {
        if let Some(i) = integer(n) {
            return Self::Int(i);
        }
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38 {
            // Integral and well inside i128: the cast is exact.
            return Self::Int(f as i128);
        }
        Self::Float(f.to_bits())
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Numbers are equal when `|a − b| ≤ absolute` or `|a − b| ≤ relative × max(|a|, |b|)`;
/// two integers are compared exactly first (no rounding through `f64`).
fn numbers_equal(x: &Number, y: &Number, rules: &DiffRules) -> bool {
    let (abs, rel) = (rules.absolute_tolerance, rules.relative_tolerance);
    let (d, m) = match (integer(x), integer(y)) {
        (Some(i), Some(j)) => {
            if i == j {
                return true;
            }
            let m = i.unsigned_abs().max(j.unsigned_abs());
            (i.abs_diff(j) as f64, m as f64)
        }
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => {
                if p == q {
                    return true;
                }
                ((p - q).abs(), p.abs().max(q.abs()))
            }
            _ => return x == y,
        },
    };
    d <= abs || d <= rel * m
}

/// Whether both strings are RFC 3339 timestamps at most the tolerance apart.
fn same_instant(x: &str, y: &str, rules: &DiffRules) -> bool {
    match (timestamp(x), timestamp(y)) {
        (Some(p), Some(q)) => (p - q).unsigned_abs() <= rules.timestamp_tolerance,
        _ => false,
    }
}

fn timestamp(text: &str) -> Option<OffsetDateTime> {
    // `YYYY-MM-DDTHH:MM:SSZ` is the shortest form; most strings fail this cheap test.
    if text.len() < 20 || text.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    OffsetDateTime::parse(text, &Rfc3339).ok()
}
