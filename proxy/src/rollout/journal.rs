//! The audit journal: who changed which route, when, from what to what, and why.
//!
//! One JSON line per change in `.strangler-audit.jsonl` beside routes.toml. The file stays
//! the single source of truth for modes; the journal only explains changes, so a reload that
//! finds a mode changed can say who did it ("file" when nobody recorded it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::lifecycle::Stage;
use crate::events::exchange::Cause;

/// One recorded change of a route's mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Route id.
    pub route: String,
    /// The stage before, e.g. `shadow` or `canary 5%`.
    pub from: String,
    /// The stage after.
    pub to: String,
    /// Who: an admin token's name, `cli`, `rollout`, `file`.
    pub by: String,
    /// Why, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, RFC 3339.
    pub at: String,
    /// The correlation id of the decision that made the change (automatic rollout), so the
    /// route-changed event can be tied to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
}

impl Change {
    /// A change made now.
    pub fn new(route: &str, from: Stage, to: Stage, by: &str, reason: Option<String>) -> Self {
        Self {
            route: route.to_owned(),
            from: from.to_string(),
            to: to.to_string(),
            by: by.to_owned(),
            reason,
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            correlation: None,
        }
    }
}

/// The journal file of the routes file at `config`.
pub fn path_for(config: &Path) -> PathBuf {
    let folder = match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    folder.join(".strangler-audit.jsonl")
}

/// Appends `changes` to the journal of `config`.
pub fn append(config: &Path, changes: &[Change]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path_for(config))?;
    let mut text = String::new();
    for change in changes {
        if let Ok(line) = serde_json::to_string(change) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// The last `limit` changes recorded for `config`, oldest first (unreadable lines skipped).
pub fn recent(config: &Path, limit: usize) -> Vec<Change> {
    let Ok(text) = std::fs::read_to_string(path_for(config)) else {
        return Vec::new();
    };
    let mut changes: Vec<Change> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let skip = changes.len().saturating_sub(limit);
    changes.drain(..skip);
    changes
}

/// Who made a route's latest change to `mode` and why, if the journal recorded it within the
/// last minute (a change nobody recorded was an edit of the file).
pub fn explain(journal: &[Change], route: &str, mode: &str) -> Option<Cause> {
    let change = journal
        .iter()
        .rev()
        .find(|c| c.route == route && c.to.split(' ').next() == Some(mode))?;
    let at = humantime::parse_rfc3339(&change.at).ok()?;
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    (age < std::time::Duration::from_secs(60)).then(|| Cause {
        by: change.by.clone(),
        reason: change.reason.clone(),
        correlation: change.correlation.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteMode;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("routes.toml");
        let c = Change::new(
            "api",
            Stage::new(RouteMode::Shadow),
            Stage::canary(5.0),
            "cli",
            Some("diffs clean".into()),
        );
        append(&config, std::slice::from_ref(&c)).unwrap();
        let rollback = Change {
            correlation: Some("decision-1".into()),
            ..Change::new(
                "api",
                Stage::canary(5.0),
                Stage::new(RouteMode::Legacy),
                "rollout",
                None,
            )
        };
        append(&config, &[rollback]).unwrap();
        let got = recent(&config, 10);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], c);
        assert_eq!(got[1].to, "legacy");
        assert_eq!(recent(&config, 1).len(), 1);
        assert_eq!(
            explain(&got, "api", "canary"),
            Some(Cause {
                by: "cli".into(),
                reason: Some("diffs clean".into()),
                correlation: None,
            })
        );
        assert_eq!(
            explain(&got, "api", "legacy"),
            Some(Cause {
                by: "rollout".into(),
                reason: None,
                correlation: Some("decision-1".into()),
            })
        );
        assert_eq!(explain(&got, "other", "legacy"), None);
    }
}
