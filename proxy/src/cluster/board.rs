//! Fleet boards: KV buckets `<bucket>-<suffix>` in which every instance keeps its own keys
//! fresh once per `[cluster] evidence_window` and follows everyone else's. The evidence
//! reports and the instance records are both boards. An entry not rewritten for three windows
//! no longer counts (its instance stopped or is cut off), and the bucket's `max_age` of three
//! windows removes it from the store too.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::kv::bounded;
use super::{Fleet, lock};

/// Windows after which an entry expires.
const EXPIRY_WINDOWS: u32 = 3;

/// The bucket's `max_age`: entries not rewritten for three windows go.
pub(super) fn max_age(window: Duration) -> Duration {
    window * EXPIRY_WINDOWS
}

/// Whether an entry written at `at_ms` still counts at `now_ms`.
pub(super) fn is_fresh(at_ms: u64, now_ms: u64, window: Duration) -> bool {
    now_ms.saturating_sub(at_ms) <= max_age(window).as_millis() as u64
}

/// One board: where it lives, what its log lines call it, where heard entries go.
pub(super) struct Board<'a, T> {
    /// The bucket is `<bucket>-<suffix>`.
    pub(super) suffix: &'static str,
    /// The bucket's description in NATS.
    pub(super) description: &'static str,
    /// What the log calls the board, e.g. "the fleet's evidence".
    pub(super) what: &'static str,
    /// What a failed publication means for the fleet, for the warning.
    pub(super) unpublished: &'static str,
    /// Entries heard, by key (deleted or purged keys removed).
    pub(super) heard: &'a Mutex<BTreeMap<String, T>>,
    /// Publishes at once when notified, besides once per window.
    pub(super) nudge: Option<&'a Notify>,
}

impl Fleet {
    /// The store `<bucket>-<suffix>` with entries expiring after `max_age`, when connected.
    pub(super) async fn aux_store(
        &self,
        suffix: &str,
        max_age: Duration,
        description: &str,
    ) -> Option<kv::Store> {
        let bucket = lock(&self.bucket).clone().filter(|b| b.is_connected())?;
        let name = format!("{}-{suffix}", self.settings.bucket);
        match bucket.aux(&name, max_age, description).await {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::warn!(error = %e, "cluster: cannot open `{name}`; trying again");
                None
            }
        }
    }

    /// Writes `entries()` (key, JSON) every window, and on every nudge, and follows the board
    /// until `shutdown`; reopens the board a window after a failure.
    pub(super) async fn run_board<T: DeserializeOwned>(
        &self,
        board: Board<'_, T>,
        shutdown: &CancellationToken,
        entries: impl Fn() -> Result<Vec<(String, Vec<u8>)>, String>,
    ) {
        let window = self.settings.evidence_window;
        loop {
            if let Some(store) = self
                .aux_store(board.suffix, max_age(window), board.description)
                .await
                && follow(&store, &board, window, shutdown, &entries).await
            {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(window) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// Publishes and watches until the store fails (`false`) or `shutdown` (`true`).
async fn follow<T: DeserializeOwned>(
    store: &kv::Store,
    board: &Board<'_, T>,
    window: Duration,
    shutdown: &CancellationToken,
    entries: &impl Fn() -> Result<Vec<(String, Vec<u8>)>, String>,
) -> bool {
    let what = board.what;
    let watch = match bounded(store.watch_all()).await {
        Ok(Ok(watch)) => watch,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cluster: cannot watch {what}");
            return false;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot watch {what}");
            return false;
        }
    };
    tokio::pin!(watch);
    let mut tick = tokio::time::interval(window);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let publish = tokio::select! {
            entry = watch.next() => match entry {
                Some(Ok(entry)) if entry.operation == Operation::Put => {
                    match serde_json::from_slice::<T>(&entry.value) {
                        Ok(value) => {
                            lock(board.heard).insert(entry.key.clone(), value);
                        }
                        Err(e) => tracing::warn!(key = %entry.key, error = %e, "cluster: ignoring an unreadable entry of {what}"),
                    }
                    false
                }
                Some(Ok(entry)) => {
                    lock(board.heard).remove(&entry.key);
                    false
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cluster: the watch of {what} failed");
                    return false;
                }
                None => return false,
            },
            _ = tick.tick() => true,
            () = nudged(board.nudge) => true,
            () = shutdown.cancelled() => return true,
        };
        if publish && let Err(e) = put_all(store, entries()).await {
            tracing::warn!(error = %e, "cluster: cannot publish to {what}; {}", board.unpublished);
            return false;
        }
    }
}

/// Returns when `nudge` is notified (a permit stored while nobody waited counts); never
/// without one.
async fn nudged(nudge: Option<&Notify>) {
    match nudge {
        Some(nudge) => nudge.notified().await,
        None => std::future::pending().await,
    }
}

/// Writes every entry, in order.
async fn put_all(
    store: &kv::Store,
    entries: Result<Vec<(String, Vec<u8>)>, String>,
) -> Result<(), String> {
    for (key, value) in entries? {
        bounded(store.put(&key, value.into()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot write `{key}`: {e}"))?;
    }
    Ok(())
}
