//! Following the bucket: every instance watches the mode keys and applies what changes
//! through the reloader, the path a file edit takes. The same loop notices NATS going away
//! (flips are refused meanwhile; the installed table keeps serving) and coming back (a
//! pending kill switch is written, then the watch starts over from each key's latest value).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::kv::{Entry, Operation};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::kv::{Bucket, ModeRecord, bounded, key_route, modes_filter};
use super::{Applied, Fleet, lock};
use crate::reload::{Reloader, Trigger};

/// How often the connection is checked, and the longest wait between joins.
const CHECK: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Fleet {
    /// Watches the bucket and applies its changes until `shutdown`, joining (again) whenever
    /// NATS is reachable.
    pub async fn run(self: Arc<Self>, reloader: Arc<Reloader>, shutdown: CancellationToken) {
        let mut backoff = CHECK;
        loop {
            match self.connect(&reloader).await {
                Ok(bucket) => {
                    backoff = CHECK;
                    if self.follow(&bucket, &reloader, &shutdown).await {
                        return;
                    }
                }
                Err(e) => {
                    self.go_offline(e);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// A connected bucket with this instance's routes seeded and a pending kill switch
    /// written; the modes read while doing so are applied.
    async fn connect(&self, reloader: &Reloader) -> Result<Bucket, String> {
        let existing = lock(&self.bucket).clone();
        let bucket = match existing {
            Some(b) if b.is_connected() => b,
            Some(_) => {
                return Err(format!(
                    "lost the connection to NATS at {}",
                    self.settings.url
                ));
            }
            None => {
                let b = Bucket::open(&self.settings, &self.instance)
                    .await
                    .map_err(|e| e.to_string())?;
                *lock(&self.bucket) = Some(b.clone());
                b
            }
        };
        if !self.is_online() {
            self.online.store(true, Ordering::Relaxed);
            let snapshot = reloader.snapshot();
            if let Err(e) = self.catch_up(snapshot.config.raw()).await {
                self.online.store(false, Ordering::Relaxed);
                return Err(e);
            }
            *lock(&self.detail) = None;
            tracing::warn!(bucket = %self.settings.bucket, "cluster: NATS is reachable; following the fleet's modes again");
            self.apply(reloader).await;
        }
        Ok(bucket)
    }

    /// Applies the bucket's changes until the connection drops (`false`) or `shutdown`
    /// (`true`).
    async fn follow(
        &self,
        bucket: &Bucket,
        reloader: &Reloader,
        shutdown: &CancellationToken,
    ) -> bool {
        let watch = match bounded(bucket.store.watch_with_history(modes_filter())).await {
            Ok(Ok(watch)) => watch,
            Ok(Err(e)) => {
                self.go_offline(format!(
                    "cannot watch bucket `{}`: {e}",
                    self.settings.bucket
                ));
                return false;
            }
            Err(e) => {
                self.go_offline(e.to_string());
                return false;
            }
        };
        tokio::pin!(watch);
        let mut check = tokio::time::interval(CHECK);
        let mut dirty = false;
        loop {
            tokio::select! {
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => {
                        dirty |= self.take(&entry);
                        if dirty && entry.delta == 0 {
                            self.apply(reloader).await;
                            dirty = false;
                        }
                    }
                    Some(Err(e)) => {
                        self.go_offline(format!("the watch of bucket `{}` failed: {e}", self.settings.bucket));
                        return false;
                    }
                    None => {
                        self.go_offline(format!("the watch of bucket `{}` ended", self.settings.bucket));
                        return false;
                    }
                },
                _ = check.tick() => {
                    if dirty {
                        self.apply(reloader).await;
                        dirty = false;
                    }
                    if !bucket.is_connected() {
                        self.go_offline(format!("lost the connection to NATS at {}", self.settings.url));
                        return false;
                    }
                    // A write failed meanwhile (a kill switch kept for later): join again.
                    if !self.is_online() {
                        return false;
                    }
                }
                () = shutdown.cancelled() => return true,
            }
        }
    }

    /// Takes one watched entry into the modes; `true` when it changed what is applied.
    fn take(&self, entry: &Entry) -> bool {
        let Some(route) = key_route(&entry.key) else {
            return false;
        };
        match entry.operation {
            Operation::Put => match ModeRecord::decode(&entry.value) {
                Ok(record) => {
                    let applied = Applied {
                        mode: record.mode,
                        percent: record.percent,
                        revision: entry.revision,
                    };
                    let taken = self.take_applied(route, applied);
                    if taken {
                        lock(&self.causes).insert(route.to_owned(), (record.mode, record.cause()));
                    }
                    taken
                }
                Err(e) => {
                    tracing::error!(key = %entry.key, revision = entry.revision, error = %e, "cluster: ignoring an unreadable record");
                    false
                }
            },
            Operation::Delete | Operation::Purge => {
                let mut modes = lock(&self.modes);
                let known = modes.get(route).map_or(0, |a| a.revision);
                if entry.revision > known && modes.remove(route).is_some() {
                    tracing::warn!(
                        route,
                        "cluster: the route's key was deleted; routes.toml's mode applies until it is written again"
                    );
                    return true;
                }
                false
            }
        }
    }

    /// Takes `applied` for `route` if it is newer than what is applied; `true` if taken.
    pub(super) fn take_applied(&self, route: &str, applied: Applied) -> bool {
        let mut modes = lock(&self.modes);
        let known = modes.get(route).map_or(0, |a| a.revision);
        if applied.revision <= known {
            return false;
        }
        modes.insert(route.to_owned(), applied);
        self.received.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Installs the modes through the reload path and keeps the on-disk copy current.
    async fn apply(&self, reloader: &Reloader) {
        reloader.reload(Trigger::Cluster).await;
        self.save_copy().await;
        self.note_applied();
    }

    /// Marks the bucket unreachable (flips refused) with `why`, logging the first time.
    pub(super) fn go_offline(&self, why: String) {
        let was = self.online.swap(false, Ordering::Relaxed);
        if was {
            tracing::error!(error = %why, "cluster: NATS unreachable; serving the last modes applied, flips refused (except the kill switch) until it is back");
        }
        *lock(&self.detail) = Some(why);
    }
}
