//! The one write path of a running proxy's flips (admin API, automatic rollout): to the
//! routes file, or in cluster mode to the fleet's bucket. One at a time per instance either
//! way (the file lock, or the fleet's write lock plus compare-and-set across instances).

use super::edit::{Flip, FlipError, flip_file};
use super::journal::Change;
use crate::reload::Reloader;

/// Writes `flip` where this proxy keeps its modes and returns the changes made; the caller
/// reloads to apply them at once (the file watcher or the bucket watch would, a moment later).
pub async fn write(reloader: &Reloader, flip: Flip) -> Result<Vec<Change>, FlipError> {
    if let Some(fleet) = reloader.fleet() {
        let snapshot = reloader.snapshot();
        return fleet.flip(&flip, snapshot.config.raw()).await;
    }
    let path = reloader.path().to_owned();
    tokio::task::spawn_blocking(move || flip_file(&path, &flip))
        .await
        .map_err(|e| FlipError::File(format!("the flip task failed: {e}")))?
}
