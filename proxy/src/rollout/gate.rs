//! Promotion gates: given a route's stage and its figures over the window, advance it, roll
//! it back, or hold — and say what is missing for the next step.

use serde::Serialize;

use super::evidence::Figures;
use super::lifecycle::Stage;
use crate::config::{PromoteConfig, RollbackConfig, RouteMode};

/// What the rollout should do with a route now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// Stay; `missing` says what the next step waits for.
    Hold {
        /// The next stage, if there is one.
        next: Option<String>,
        /// What is not yet satisfied, in words.
        missing: Vec<String>,
    },
    /// Advance to `to`.
    Promote {
        /// The next stage.
        #[serde(skip)]
        to: Stage,
        /// Why, in words (the figures that held).
        because: String,
    },
    /// Go back to `to`.
    RollBack {
        /// Where to go back to.
        #[serde(skip)]
        to: Stage,
        /// Why, in words (the figure that breached).
        because: String,
    },
}

/// The stage after `stage` along `steps`, or `None` at the end of the road.
pub fn next_stage(stage: Stage, steps: &[f64]) -> Option<Stage> {
    let after = |p: f64| steps.iter().copied().find(|s| *s > p);
    let step_or_extracted = |p: Option<f64>| match p {
        Some(p) if p < 100.0 => Stage::canary(p),
        _ => Stage::new(RouteMode::Extracted),
    };
    match stage.mode {
        RouteMode::Legacy => Some(Stage::new(RouteMode::Shadow)),
        RouteMode::Shadow => Some(step_or_extracted(steps.first().copied())),
        RouteMode::Canary => Some(step_or_extracted(after(stage.percent.unwrap_or(0.0)))),
        RouteMode::Extracted | RouteMode::Retired => None,
    }
}

/// Judges `figures` for a route at `stage`.
pub fn decide(
    stage: Stage,
    figures: &Figures,
    promote: &PromoteConfig,
    rollback: &RollbackConfig,
) -> Decision {
    if matches!(stage.mode, RouteMode::Canary | RouteMode::Extracted) {
        if let Some(because) = breach(figures, rollback) {
            return Decision::RollBack {
                to: Stage::new(RouteMode::Shadow),
                because,
            };
        }
    }
    let Some(next) = next_stage(stage, &promote.steps) else {
        return Decision::Hold {
            next: None,
            missing: vec!["nothing: retiring the monolith's route is a human decision".into()],
        };
    };
    if stage.mode == RouteMode::Legacy {
        return Decision::Hold {
            next: Some(next.to_string()),
            missing: vec![
                "a human to put the route in shadow: there is no evidence in legacy mode".into(),
            ],
        };
    }
    let mut missing = Vec::new();
    let window = promote.window.as_secs_f64();
    if figures.span_secs + 1e-9 < window {
        missing.push(format!(
            "time: {:.0} s of {:.0} s held",
            figures.span_secs, window
        ));
    }
    if figures.samples < promote.min_samples {
        missing.push(format!(
            "samples: {} of {}",
            figures.samples, promote.min_samples
        ));
    }
    if figures.regression_rate() > promote.max_regression_rate {
        missing.push(format!(
            "regression rate {:.3} % above {:.3} %",
            figures.regression_rate() * 100.0,
            promote.max_regression_rate * 100.0
        ));
    }
    if figures.error_rate_delta() > promote.max_error_rate_delta {
        missing.push(format!(
            "candidate error rate {:.3} % above legacy's by more than {:.3} %",
            figures.error_rate_delta() * 100.0,
            promote.max_error_rate_delta * 100.0
        ));
    }
    if figures.p99_ratio() > promote.max_p99_ratio {
        missing.push(format!(
            "p99 ratio {:.2} above {:.2}",
            figures.p99_ratio(),
            promote.max_p99_ratio
        ));
    }
    if missing.is_empty() {
        Decision::Promote {
            to: next,
            because: format!(
                "gate held for {:.0} s: {} samples, regression rate {:.3} %, error delta {:.3} %, p99 ratio {:.2}",
                figures.span_secs,
                figures.samples,
                figures.regression_rate() * 100.0,
                figures.error_rate_delta() * 100.0,
                figures.p99_ratio()
            ),
        }
    } else {
        Decision::Hold {
            next: Some(next.to_string()),
            missing,
        }
    }
}

fn breach(figures: &Figures, rollback: &RollbackConfig) -> Option<String> {
    if figures.samples >= rollback.min_samples
        && figures.regression_rate() > rollback.max_regression_rate
    {
        return Some(format!(
            "regression rate {:.2} % over {} samples breached {:.2} %",
            figures.regression_rate() * 100.0,
            figures.samples,
            rollback.max_regression_rate * 100.0
        ));
    }
    if figures.candidate_requests >= rollback.min_samples
        && figures.error_rate_delta() > rollback.max_error_rate_delta
    {
        return Some(format!(
            "candidate error rate exceeded legacy's by {:.2} % over {} requests (limit {:.2} %)",
            figures.error_rate_delta() * 100.0,
            figures.candidate_requests,
            rollback.max_error_rate_delta * 100.0
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn promote() -> PromoteConfig {
        PromoteConfig {
            min_samples: 100,
            window: Duration::from_secs(60),
            ..PromoteConfig::default()
        }
    }

    fn good() -> Figures {
        Figures {
            samples: 500,
            legacy_requests: 500,
            candidate_requests: 500,
            legacy_p99_ms: 10.0,
            candidate_p99_ms: 11.0,
            span_secs: 60.0,
            ..Figures::default()
        }
    }

    #[test]
    fn steps_climb_to_extracted() {
        let steps = [1.0, 5.0, 25.0, 100.0];
        let mut stage = Stage::new(RouteMode::Shadow);
        let mut path = Vec::new();
        while let Some(next) = next_stage(stage, &steps) {
            path.push(next.to_string());
            stage = next;
        }
        assert_eq!(path, ["canary 1%", "canary 5%", "canary 25%", "extracted"]);
        assert_eq!(
            next_stage(Stage::canary(30.0), &[10.0, 50.0]),
            Some(Stage::canary(50.0))
        );
        assert_eq!(
            next_stage(Stage::canary(50.0), &[10.0, 50.0]),
            Some(Stage::new(RouteMode::Extracted))
        );
    }

    #[test]
    fn a_held_gate_promotes() {
        let d = decide(
            Stage::new(RouteMode::Shadow),
            &good(),
            &promote(),
            &RollbackConfig::default(),
        );
        assert!(
            matches!(d, Decision::Promote { to, .. } if to == Stage::canary(1.0)),
            "{d:?}"
        );
    }

    #[test]
    fn each_shortfall_is_named() {
        let f = Figures {
            samples: 10,
            regressions: 1,
            candidate_errors: 50,
            candidate_p99_ms: 30.0,
            span_secs: 5.0,
            ..good()
        };
        let Decision::Hold { missing, next } = decide(
            Stage::canary(5.0),
            &Figures {
                candidate_errors: 0,
                ..f
            },
            &promote(),
            &RollbackConfig {
                min_samples: 1000,
                ..RollbackConfig::default()
            },
        ) else {
            panic!("should hold");
        };
        assert_eq!(next.as_deref(), Some("canary 25%"));
        let text = missing.join("; ");
        for word in ["time", "samples", "regression rate", "p99"] {
            assert!(text.contains(word), "{word} missing from {text}");
        }
    }

    #[test]
    fn breaches_roll_back_to_shadow() {
        let bad = Figures {
            regressions: 50,
            ..good()
        };
        let d = decide(
            Stage::canary(25.0),
            &bad,
            &promote(),
            &RollbackConfig::default(),
        );
        assert!(
            matches!(d, Decision::RollBack { to, .. } if to == Stage::new(RouteMode::Shadow)),
            "{d:?}"
        );
        let failing = Figures {
            candidate_errors: 100,
            ..good()
        };
        let d = decide(
            Stage::new(RouteMode::Extracted),
            &failing,
            &promote(),
            &RollbackConfig::default(),
        );
        assert!(matches!(d, Decision::RollBack { .. }), "{d:?}");
        // Shadow never rolls back: no user depends on the candidate there.
        assert!(matches!(
            decide(
                Stage::new(RouteMode::Shadow),
                &failing,
                &promote(),
                &RollbackConfig::default()
            ),
            Decision::Hold { .. }
        ));
    }

    #[test]
    fn extracted_is_the_end_of_the_automatic_road() {
        let d = decide(
            Stage::new(RouteMode::Extracted),
            &good(),
            &promote(),
            &RollbackConfig::default(),
        );
        assert!(matches!(d, Decision::Hold { next: None, .. }));
    }
}
