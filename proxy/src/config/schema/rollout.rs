//! `promote = { … }` and `rollback = { … }`: when the rollout may move a route by itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `promote = { … }`: the gate a route must hold over `window` to advance one stage
/// (shadow → canary steps → extracted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromoteConfig {
    /// Advance automatically when the gate holds (otherwise the figures are only shown).
    pub auto: bool,
    /// Comparisons needed in the window before anything is judged.
    pub min_samples: u64,
    /// Largest share of comparisons that may be regressions.
    pub max_regression_rate: f64,
    /// Largest amount by which the candidate's 5xx rate may exceed legacy's.
    pub max_error_rate_delta: f64,
    /// Largest candidate p99 latency as a multiple of legacy's.
    pub max_p99_ratio: f64,
    /// How long a stage must hold (and the span the figures cover).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Canary percentages climbed in order; reaching 100 (or the end) means extracted.
    pub steps: Vec<f64>,
}

impl Default for PromoteConfig {
    fn default() -> Self {
        Self {
            auto: false,
            min_samples: 500,
            max_regression_rate: 0.001,
            max_error_rate_delta: 0.005,
            max_p99_ratio: 1.2,
            window: Duration::from_secs(600),
            steps: vec![1.0, 5.0, 25.0, 100.0],
        }
    }
}

/// `rollback = { … }`: breaches that send a canary or extracted route back to shadow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollbackConfig {
    /// A regression share above this rolls back.
    pub max_regression_rate: f64,
    /// A candidate 5xx rate exceeding legacy's by more than this rolls back.
    pub max_error_rate_delta: f64,
    /// Requests the candidate must have answered in the window before its error rate counts.
    pub min_samples: u64,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        Self {
            max_regression_rate: 0.01,
            max_error_rate_delta: 0.02,
            min_samples: 20,
        }
    }
}
