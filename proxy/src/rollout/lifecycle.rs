//! The route lifecycle: legacy → shadow → canary(percent) → extracted → retired, and back.
//!
//! Moving back is always allowed: it is the safe direction (toward the monolith), except out
//! of `retired`, where the monolith's route may be gone. Moving forward may not skip the
//! evidence: a jump straight to `extracted` from `legacy`, or to `retired` from anything but
//! `extracted`, needs `--force`.

use crate::config::RouteMode;

/// A route's position in its lifecycle: the mode, and the canary share when in `canary`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// The mode.
    pub mode: RouteMode,
    /// The canary percentage (meaningful in `canary` only).
    pub percent: Option<f64>,
}

impl Stage {
    /// A stage of `mode` (no percent).
    pub fn new(mode: RouteMode) -> Self {
        Self {
            mode,
            percent: None,
        }
    }

    /// A canary stage at `percent`.
    pub fn canary(percent: f64) -> Self {
        Self {
            mode: RouteMode::Canary,
            percent: Some(percent),
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.mode, self.percent) {
            (RouteMode::Canary, Some(p)) => write!(f, "canary {p}%"),
            (mode, _) => write!(f, "{mode}"),
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransitionError {
    /// A forward jump that skips the evidence.
    #[error(
        "{from} → {to} skips {skipped}; go step by step, or pass --force if you really mean it"
    )]
    Skips {
        /// Current stage.
        from: String,
        /// Requested stage.
        to: String,
        /// What the jump skips.
        skipped: &'static str,
    },
    /// Leaving `retired` toward the monolith.
    #[error(
        "{to} after retired sends traffic to a monolith route that may be gone; pass --force if it still exists"
    )]
    Unretire {
        /// Requested stage.
        to: String,
    },
    /// A canary percentage out of range, or a canary without one.
    #[error("a canary needs a percentage from 0 to 100 (got {0}); pass --percent N")]
    Percent(String),
    /// Nothing would change.
    #[error("the route is already {0}")]
    Unchanged(String),
}

/// The rank of a mode along the lifecycle.
fn rank(mode: RouteMode) -> u8 {
    match mode {
        RouteMode::Legacy => 0,
        RouteMode::Shadow => 1,
        RouteMode::Canary => 2,
        RouteMode::Extracted => 3,
        RouteMode::Retired => 4,
    }
}

/// Checks a move from `from` to `to`; `force` allows the risky jumps.
pub fn check(from: Stage, to: Stage, force: bool) -> Result<(), TransitionError> {
    if to.mode == RouteMode::Canary {
        match to.percent {
            Some(p) if (0.0..=100.0).contains(&p) => {}
            other => {
                return Err(TransitionError::Percent(
                    other.map_or("none".into(), |p| p.to_string()),
                ));
            }
        }
    }
    if from == to || (from.mode == to.mode && to.mode != RouteMode::Canary) {
        return Err(TransitionError::Unchanged(to.to_string()));
    }
    if force {
        return Ok(());
    }
    let (f, t) = (rank(from.mode), rank(to.mode));
    if from.mode == RouteMode::Retired && t < f {
        return Err(TransitionError::Unretire { to: to.to_string() });
    }
    let skipped = match (from.mode, to.mode) {
        (RouteMode::Legacy, RouteMode::Extracted) => {
            Some("shadow and canary: no comparison has been seen")
        }
        (RouteMode::Legacy, RouteMode::Retired)
        | (RouteMode::Shadow, RouteMode::Retired)
        | (RouteMode::Canary, RouteMode::Retired) => {
            Some("extracted: the new service has not answered everyone yet")
        }
        _ => None,
    };
    match skipped {
        Some(skipped) => Err(TransitionError::Skips {
            from: from.to_string(),
            to: to.to_string(),
            skipped,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RouteMode::*;

    fn s(mode: RouteMode) -> Stage {
        Stage::new(mode)
    }

    #[test]
    fn the_happy_path_is_allowed() {
        assert!(check(s(Legacy), s(Shadow), false).is_ok());
        assert!(check(s(Shadow), Stage::canary(5.0), false).is_ok());
        assert!(check(Stage::canary(5.0), Stage::canary(25.0), false).is_ok());
        assert!(check(Stage::canary(25.0), s(Extracted), false).is_ok());
        assert!(check(s(Extracted), s(Retired), false).is_ok());
        assert!(check(s(Shadow), s(Extracted), false).is_ok());
    }

    #[test]
    fn going_back_is_allowed_except_out_of_retired() {
        for from in [s(Shadow), Stage::canary(50.0), s(Extracted)] {
            assert!(check(from, s(Legacy), false).is_ok(), "{from}");
        }
        assert!(check(s(Extracted), s(Shadow), false).is_ok());
        assert!(matches!(
            check(s(Retired), s(Legacy), false),
            Err(TransitionError::Unretire { .. })
        ));
        assert!(check(s(Retired), s(Extracted), false).is_err());
        assert!(check(s(Retired), s(Legacy), true).is_ok());
    }

    #[test]
    fn skipping_evidence_needs_force() {
        let err = check(s(Legacy), s(Retired), false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(check(s(Legacy), s(Extracted), false).is_err());
        assert!(check(s(Shadow), s(Retired), false).is_err());
        assert!(check(s(Legacy), s(Retired), true).is_ok());
    }

    #[test]
    fn canary_needs_a_valid_percent_and_no_op_is_refused() {
        assert!(matches!(
            check(s(Shadow), s(Canary), false),
            Err(TransitionError::Percent(_))
        ));
        assert!(matches!(
            check(s(Shadow), Stage::canary(150.0), false),
            Err(TransitionError::Percent(_))
        ));
        assert!(matches!(
            check(s(Shadow), s(Shadow), false),
            Err(TransitionError::Unchanged(_))
        ));
        assert!(matches!(
            check(Stage::canary(5.0), Stage::canary(5.0), true),
            Err(TransitionError::Unchanged(_))
        ));
    }
}
