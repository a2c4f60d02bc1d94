//! The learned noise baseline, and the verdict it gives a comparison.
//!
//! Noise is where the legacy side disagrees with itself: two legacy answers to the same safe
//! request are compared ([`NoiseBaseline::learn`]) and the shapes of their differences (array
//! indices as `*`) are remembered. A candidate difference whose shape is a learned one, or
//! lies under one, is noise; any other is a regression. A baseline never forgets, so one
//! poisoned sample would hide real regressions for good; to limit that, it does not learn
//!
//! - from a pair whose statuses differ (an error page is not "the same answer with noise"),
//! - the whole body (`/body`: an HTML page or an undecodable body), which would make every
//!   body difference noise,
//!
//! and it holds at most [`NoiseBaseline::LIMIT`] shapes: past that, new shapes are dropped
//! (their differences stay regressions) and counted. Object keys that change every time (ids
//! as keys) fill it up; an `ignore` rule is the tool for those.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Comparison, DiffRules, Difference, Observed, Verdict, compare};

/// What the legacy side's disagreement with itself has taught about one route (keep one per
/// route path template). Plain data: share it behind a lock.
#[derive(Debug, Clone, Default)]
pub struct NoiseBaseline {
    /// Learned shapes and how many learning pairs showed each.
    pub(super) shapes: BTreeMap<String, u64>,
    /// Learning pairs taken into account.
    samples: u64,
    /// Learning pairs refused (statuses differed).
    refused: u64,
    /// Shapes not remembered because the baseline was full.
    dropped: u64,
}

impl NoiseBaseline {
    /// Most shapes one baseline remembers.
    pub const LIMIT: usize = 256;

    /// An empty baseline: every difference is a regression until it learns.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns from two legacy answers to the same request, compared under `rules` (the
    /// route's, so that ignored pointers are not learned). Returns whether the pair was
    /// used: a pair whose statuses differ is refused.
    pub fn learn(&mut self, legacy_a: &Observed, legacy_b: &Observed, rules: &DiffRules) -> bool {
        if legacy_a.status != legacy_b.status {
            self.refused += 1;
            return false;
        }
        self.samples += 1;
        let comparison = compare(legacy_a, legacy_b, rules);
        let Some(shapes) = comparison.shapes() else {
            // Too many distinct shapes to remember: learn the ones that were kept.
            self.remember(comparison.differences.iter().map(|d| d.shape.as_str()));
            self.dropped += 1;
            return true;
        };
        self.remember(shapes.into_iter());
        true
    }

    fn remember<'a>(&mut self, shapes: impl Iterator<Item = &'a str>) {
        for shape in shapes {
            if shape == "/body" || shape == "/status" {
                continue;
            }
            if let Some(count) = self.shapes.get_mut(shape) {
                *count += 1;
            } else if self.shapes.len() < Self::LIMIT {
                self.shapes.insert(shape.to_owned(), 1);
            } else {
                self.dropped += 1;
            }
        }
    }

    /// Learning pairs taken into account: verdicts mean more as this grows.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Whether differences at `shape` are learned noise: it or one of its ancestors was
    /// learned.
    fn covers(&self, shape: &str) -> bool {
        let ancestors = shape
            .match_indices('/')
            .filter_map(|(i, _)| shape.get(..i))
            .filter(|p| !p.is_empty());
        ancestors
            .chain(std::iter::once(shape))
            .any(|p| self.shapes.contains_key(p))
    }
}

/// The verdict on a comparison and which of its kept differences made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// `equal`, `noise` or `regression`.
    pub verdict: Verdict,
    /// Kept differences the baseline explains.
    pub noise: Vec<Difference>,
    /// Kept differences it does not: what someone must look at.
    pub regressions: Vec<Difference>,
    /// Learning pairs behind the baseline ([`NoiseBaseline::samples`]).
    pub samples: u64,
}

/// Classifies a legacy-vs-candidate comparison against the route's baseline: `Equal` when
/// nothing differed, `Noise` when every difference (kept or only counted) is learned noise or
/// ignored by a rule, `Regression` otherwise. A comparison whose unkept differences were too
/// varied to remember classifies as a regression.
pub fn classify(comparison: &Comparison, baseline: &NoiseBaseline) -> Classification {
    let (noise, regressions): (Vec<Difference>, Vec<Difference>) = comparison
        .differences
        .iter()
        .cloned()
        .partition(|d| baseline.covers(&d.shape));
    let all_noise = match comparison.shapes() {
        Some(shapes) => shapes.iter().all(|s| baseline.covers(s)),
        None => false,
    };
    let verdict = if comparison.total == 0 && comparison.ignored == 0 {
        Verdict::Equal
    } else if all_noise {
        Verdict::Noise
    } else {
        Verdict::Regression
    };
    Classification {
        verdict,
        noise,
        regressions,
        samples: baseline.samples,
    }
}
