//! Which instance applied which revision: every running instance writes, to the bucket
//! `<bucket>-instances`, key `instance.<instance>`, the revision of each route's mode it
//! serves, whether it leads, and when it wrote; on every apply and once per
//! `[cluster] evidence_window`. Every instance watches that bucket, so its admin API shows
//! who applied each route's current revision (`applied_by`) and the fleet's members.
//!
//! Like the evidence reports, a record older than three windows no longer counts (its
//! instance stopped or is cut off), and the bucket's `max_age` of three windows removes it
//! from the store too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::board::{Board, is_fresh, max_age};
use super::evidence::{key_safe, now_ms};
use super::kv::bounded;
use super::{Fleet, lock};

/// The bucket is `<bucket>-instances`.
const SUFFIX: &str = "instances";
/// The bucket's description in NATS.
const DESCRIPTION: &str =
    "strangler instances: the revision of each route's mode each instance applies";

/// What one instance has applied, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The instance.
    pub instance: String,
    /// Route id → the revision of the mode it serves (routes not from the bucket left out).
    pub routes: BTreeMap<String, u64>,
    /// Whether it held the leader lease when it wrote.
    pub leader: bool,
    /// When it wrote, ms since the Unix epoch.
    pub at_ms: u64,
}

/// The key of `instance`'s record.
pub fn member_key(instance: &str) -> String {
    format!("instance.{}", key_safe(instance))
}

/// The members of `records` heard within three `window`s of `now_ms`, by instance name.
pub fn fresh<'a>(
    records: impl IntoIterator<Item = &'a Member>,
    now_ms: u64,
    window: Duration,
) -> BTreeMap<String, Member> {
    records
        .into_iter()
        .filter(|m| is_fresh(m.at_ms, now_ms, window))
        .map(|m| (m.instance.clone(), m.clone()))
        .collect()
}

impl Fleet {
    /// This instance's record as of now.
    fn own_member(&self) -> Member {
        Member {
            instance: self.instance.clone(),
            routes: lock(&self.modes)
                .iter()
                .filter(|(_, a)| a.revision > 0)
                .map(|(route, a)| (route.clone(), a.revision))
                .collect(),
            leader: self.is_leader(),
            at_ms: now_ms(),
        }
    }

    /// The fleet's live members by name: those heard within three windows and, on a running
    /// instance, itself as it is now (the command line is no member).
    pub fn members(&self) -> BTreeMap<String, Member> {
        let mut members = fresh(
            lock(&self.members).values(),
            now_ms(),
            self.settings.evidence_window,
        );
        if self.keeps_copy {
            let me = self.own_member();
            members.insert(me.instance.clone(), me);
        }
        members
    }

    /// The live instances serving `route` at `revision`, by name.
    pub fn applied_by(&self, route: &str, revision: u64) -> Vec<String> {
        self.members()
            .into_values()
            .filter(|m| m.routes.get(route) == Some(&revision))
            .map(|m| m.instance)
            .collect()
    }

    /// The members for the admin API: name, leader flag, age of the record, revisions.
    pub fn members_json(&self) -> Value {
        let now = now_ms();
        let list: Vec<Value> = self
            .members()
            .into_values()
            .map(|m| {
                json!({
                    "instance": m.instance,
                    "leader": m.leader,
                    "age_ms": now.saturating_sub(m.at_ms),
                    "routes": m.routes,
                })
            })
            .collect();
        Value::Array(list)
    }

    /// Reads every member record once (the command line, which does not watch). An error
    /// says why the bucket could not be read.
    pub async fn read_members(&self) -> Result<(), String> {
        let store = self
            .instances_store()
            .await
            .ok_or_else(|| format!("cannot open `{}-instances`", self.settings.bucket))?;
        let keys = bounded(store.keys())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot list `{}-instances`: {e}", self.settings.bucket))?;
        let keys: Vec<Result<String, _>> = bounded(keys.take(10_000).collect())
            .await
            .map_err(|e| e.to_string())?;
        for key in keys {
            let key = key.map_err(|e| format!("cannot list the instances: {e}"))?;
            let value = bounded(store.get(&key))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot read `{key}`: {e}"))?;
            if let Some(value) = value {
                match serde_json::from_slice::<Member>(&value) {
                    Ok(member) => {
                        lock(&self.members).insert(key, member);
                    }
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "cluster: ignoring an unreadable instance record")
                    }
                }
            }
        }
        Ok(())
    }

    async fn instances_store(&self) -> Option<kv::Store> {
        let max_age = max_age(self.settings.evidence_window);
        self.aux_store(SUFFIX, max_age, DESCRIPTION).await
    }

    /// Says that this instance applied a change, so its record is written now rather than
    /// at the next window.
    pub(super) fn note_applied(&self) {
        self.applied_notice.notify_one();
    }

    /// Publishes this instance's record on every apply and every window, and follows the
    /// other instances' until `shutdown`.
    pub async fn run_instances(self: Arc<Self>, shutdown: CancellationToken) {
        let board = Board {
            suffix: SUFFIX,
            description: DESCRIPTION,
            what: "the fleet's instances",
            unpublished: "the fleet shows this instance as gone until it can",
            heard: &self.members,
            nudge: Some(&self.applied_notice),
        };
        self.run_board(board, &shutdown, || {
            let value = serde_json::to_vec(&self.own_member()).map_err(|e| e.to_string())?;
            Ok(vec![(member_key(&self.instance), value)])
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(instance: &str, at_ms: u64) -> Member {
        Member {
            instance: instance.into(),
            routes: BTreeMap::from([("api".to_owned(), 7)]),
            leader: false,
            at_ms,
        }
    }

    #[test]
    fn members_not_heard_for_three_windows_are_gone() {
        let now = 1_000_000;
        let records = [member("a", now - 29_000), member("b", now - 31_000)];
        let live = fresh(&records, now, Duration::from_secs(10));
        assert_eq!(live.keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn keys_take_any_instance_name() {
        assert_eq!(member_key("edge-1"), "instance.edge-1");
        assert_eq!(member_key("host.lan:8080"), "instance.host.lan=8080");
    }

    #[test]
    fn records_round_trip() {
        let m = member("edge-1", 5);
        let back: Member =
            serde_json::from_slice(&serde_json::to_vec(&m).expect("encodes")).expect("decodes");
        assert_eq!(back, m);
    }
}
