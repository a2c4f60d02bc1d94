//! The on-disk copy of the last route modes this instance applied from the fleet:
//! `data/cluster-modes.json` beside the config file. An instance that starts while NATS is
//! unreachable serves these rather than routes.toml's, so a route the fleet rolled back
//! never comes back just because the store was away. Written by write-to-temp-and-rename,
//! so a crash leaves the old copy or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Applied;
use crate::config::RouteMode;
use crate::rollout::{Flip, Stage, Target};

/// Where the copy lives, relative to the config file's folder.
pub const COPY: &str = "data/cluster-modes.json";

/// The copy's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Copy {
    /// The bucket the modes came from (a copy of another bucket is not used).
    pub bucket: String,
    /// When it was written, RFC 3339.
    pub saved_at: String,
    /// Route id → mode and revision.
    pub routes: BTreeMap<String, Applied>,
    /// A kill switch applied while NATS was away and not yet written to the bucket; kept
    /// here so that a restart before NATS returns does not lose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_kill: Option<PendingKill>,
}

/// The kill switch waiting for NATS: who pulled it, why, and whether retired routes move too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingKill {
    /// Who asked.
    pub by: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Retired routes move too.
    #[serde(default)]
    pub force: bool,
}

impl PendingKill {
    /// The record of the kill switch `flip`.
    pub fn of(flip: &Flip) -> Self {
        Self {
            by: flip.by.clone(),
            reason: flip.reason.clone(),
            force: flip.force,
        }
    }

    /// The flip to write when NATS returns.
    pub fn flip(&self) -> Flip {
        Flip {
            target: Target::All,
            to: Stage::new(RouteMode::Legacy),
            force: self.force,
            by: self.by.clone(),
            reason: self.reason.clone(),
            correlation: None,
            revision: None,
        }
    }
}

/// The copy's path for a config whose folder is `base_dir`.
pub fn path(base_dir: &Path) -> PathBuf {
    base_dir.join(COPY)
}

/// Writes `routes` (and a kill switch waiting for NATS) as the copy at `file`.
pub fn save(
    file: &Path,
    bucket: &str,
    routes: &BTreeMap<String, Applied>,
    pending_kill: Option<PendingKill>,
) -> std::io::Result<()> {
    let copy = Copy {
        bucket: bucket.to_owned(),
        saved_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        routes: routes.clone(),
        pending_kill,
    };
    let text = serde_json::to_vec_pretty(&copy).map_err(std::io::Error::other)?;
    let folder = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let temp = folder.join(format!(".cluster-modes.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, file)) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(())
}

/// Reads the copy at `file` if there is one for `bucket`. `Ok(None)`: no copy (first
/// start); an error: a copy that cannot be used, with what is wrong.
pub fn load(file: &Path, bucket: &str) -> Result<Option<Copy>, String> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let copy: Copy = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a mode copy ({e}); delete it", file.display()))?;
    if copy.bucket != bucket {
        return Err(format!(
            "{} holds the modes of bucket `{}`, not `{bucket}`",
            file.display(),
            copy.bucket
        ));
    }
    Ok(Some(copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bucket_check() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = path(dir.path());
        assert_eq!(load(&file, "b").expect("no copy yet"), None);
        let routes: BTreeMap<String, Applied> = [(
            "api".to_owned(),
            Applied {
                mode: RouteMode::Canary,
                percent: Some(5.0),
                revision: 7,
            },
        )]
        .into();
        save(&file, "b", &routes, None).expect("saved");
        let copy = load(&file, "b").expect("readable").expect("present");
        assert_eq!(copy.routes, routes);
        assert_eq!(copy.pending_kill, None);
        let kill = Flip {
            reason: Some("outage".into()),
            ..PendingKill {
                by: "admin".into(),
                reason: None,
                force: false,
            }
            .flip()
        };
        save(&file, "b", &routes, Some(PendingKill::of(&kill))).expect("saved");
        let copy = load(&file, "b").expect("readable").expect("present");
        let back = copy.pending_kill.expect("the kill switch is kept").flip();
        assert_eq!(
            (back.target, back.to, back.by, back.reason),
            (kill.target, kill.to, kill.by, kill.reason)
        );
        let err = load(&file, "other").unwrap_err();
        assert!(err.contains("`b`"), "{err}");
        std::fs::write(&file, "{").expect("write");
        assert!(load(&file, "b").unwrap_err().contains("delete it"));
    }
}
