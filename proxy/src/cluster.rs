//! A fleet: several strangler instances sharing route modes through a NATS JetStream
//! key-value bucket (`[cluster]` in routes.toml; off by default).
//!
//! In cluster mode the bucket, not routes.toml, is the source of truth for route modes: one
//! key per route, its KV revision the route's version (`kv`). Upstreams, matches and every
//! other setting are still read from the file. On start an instance opens (or creates) the
//! bucket and writes the file's mode for every route the bucket does not know yet, which
//! seeds an empty bucket; then it serves the bucket's modes (`modes`). Flips — `strangler
//! flip`, `PUT /admin/routes/{id}` and the automatic rollout — go through the one write path
//! of [`crate::rollout::write`], which here becomes a compare-and-set on the revision, so two
//! concurrent flips cannot both win. Every instance watches the bucket and applies what it
//! sees through [`crate::reload::Reloader`], the path a file edit takes (`watch`).
//!
//! Faults: the last modes applied are kept on disk (`offline`), so an instance that starts
//! while NATS is away serves those (routes.toml only when it has none) and joins when NATS
//! returns. While NATS is away, flips are refused, except the kill switch, which applies at
//! once locally and is written to the bucket when NATS is back. Nothing here is on the data
//! path: requests only ever read the installed snapshot.
//!
//! Promotion evidence is pooled over the fleet (`evidence`: each instance publishes its
//! counters per window to `<bucket>-evidence`, the gates judge the sum), and one instance,
//! the holder of the lease in `<bucket>-leader` (`lease`), is the only one that promotes or
//! rolls back; its decisions carry the revision they were judged on, so a stale one is
//! refused by the compare-and-set rather than taken twice.
//!
//! Each instance also says which revision of each route it applied (`instances`: a record per
//! instance in `<bucket>-instances`, written on every apply and every evidence window, gone
//! three windows after its instance stopped), so the admin API, `strangler routes` and the
//! dashboard show who applied a route's current revision.

mod board;
mod evidence;
mod instances;
mod kv;
mod lease;
mod modes;
mod offline;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use instances::Member;
pub use kv::{Bucket, ModeRecord, Unreachable, key_route, route_key};

pub use offline::COPY as OFFLINE_COPY;

use crate::config::{ClusterConfig, RouteMode};
use crate::events::exchange::Cause;
use crate::rollout::{Flip, Stage};
use evidence::Report;
use lease::Lease;

/// A route's mode as this instance applies it, with the bucket revision it came from
/// (0: not in the bucket yet — the file's mode, or a kill switch waiting for NATS).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The mode.
    pub mode: RouteMode,
    /// The canary percentage (mode `canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// The KV revision.
    pub revision: u64,
}

impl Applied {
    /// The stage it describes.
    pub fn stage(&self) -> Stage {
        Stage {
            mode: self.mode,
            percent: self.percent,
        }
    }
    /// Whether a table serving `stage` serves this (a percent only matters in canary).
    pub fn serves(&self, stage: Stage) -> bool {
        self.mode == stage.mode && (self.mode != RouteMode::Canary || self.percent == stage.percent)
    }
}

/// Where this instance's modes came from when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedFrom {
    /// The bucket (NATS was reachable).
    Bucket,
    /// The on-disk copy of the last modes applied (NATS was unreachable).
    OfflineCopy,
    /// routes.toml (NATS was unreachable and there was no copy yet).
    File,
}

impl StartedFrom {
    fn as_str(self) -> &'static str {
        match self {
            Self::Bucket => "bucket",
            Self::OfflineCopy => "offline copy",
            Self::File => "routes.toml",
        }
    }
}

/// One instance's membership in a fleet: its bucket connection, the modes it applies, and
/// what went wrong. Shared by the reloader (which overlays the modes on the file), the
/// flip path and the admin API.
#[derive(Debug)]
pub struct Fleet {
    /// `[cluster]` as configured.
    settings: ClusterConfig,
    /// This instance's name (records say who wrote them).
    instance: String,
    /// routes.toml, for the audit journal beside it.
    config_path: PathBuf,
    /// The on-disk copy of the applied modes.
    copy: PathBuf,
    /// The connection, once one was made (async-nats reconnects it by itself).
    bucket: Mutex<Option<Bucket>>,
    /// Route id → the mode applied, from the bucket.
    modes: Mutex<BTreeMap<String, Applied>>,
    /// Whether the bucket is reachable now; flips are refused while it is not.
    online: AtomicBool,
    /// Where the modes came from at start.
    started_from: Mutex<StartedFrom>,
    /// Why the bucket is unreachable, when it is.
    detail: Mutex<Option<String>>,
    /// A kill switch applied while offline, to write to the bucket when NATS returns.
    pending_kill: Mutex<Option<Flip>>,
    /// Who made each route's latest change seen in the bucket, for route-changed events.
    causes: Mutex<HashMap<String, (RouteMode, Cause)>>,
    /// File modes already warned about (route → the file's stage), so each edit warns once.
    warned: Mutex<HashMap<String, Stage>>,
    /// Serializes this instance's writes (other instances are kept out by the CAS).
    writes: tokio::sync::Mutex<()>,
    /// Flips refused because someone else changed the route first.
    conflicts: AtomicU64,
    /// Changes received from the bucket and applied.
    received: AtomicU64,
    /// Whether this is a running instance (keeps the on-disk copy) or the command line.
    keeps_copy: bool,
    /// This instance's side of the leader lease.
    lease: Mutex<Lease>,
    /// This instance's latest counters by route, published every evidence window.
    local: Mutex<BTreeMap<String, Report>>,
    /// The fleet's reports by key, as watched.
    heard: Mutex<evidence::Heard>,
    /// What each instance applied, by key, as watched.
    members: Mutex<BTreeMap<String, Member>>,
    /// Signalled on every apply, so this instance's record is written at once.
    applied_notice: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Fleet {
    /// This instance's name in the fleet.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The bucket's name.
    pub fn bucket_name(&self) -> &str {
        &self.settings.bucket
    }

    /// Whether the bucket is reachable now.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// The revision of `route`'s mode as applied here (`None`: not from the bucket).
    pub fn revision(&self, route: &str) -> Option<u64> {
        lock(&self.modes)
            .get(route)
            .map(|a| a.revision)
            .filter(|r| *r > 0)
    }

    /// Who changed `route` to `mode`, if that is the latest change seen in the bucket.
    pub fn cause(&self, route: &str, mode: &str) -> Option<Cause> {
        lock(&self.causes)
            .get(route)
            .filter(|(m, _)| m.as_str() == mode)
            .map(|(_, cause)| cause.clone())
    }

    /// The mode applied to `route`, with its revision.
    pub fn applied_to(&self, route: &str) -> Option<Applied> {
        lock(&self.modes).get(route).copied()
    }

    /// The modes applied, by route.
    pub fn applied(&self) -> BTreeMap<String, Applied> {
        lock(&self.modes).clone()
    }

    /// State for `/readyz` and the admin API: who this is, whether the bucket is reachable,
    /// where the modes came from, and why it is offline.
    pub fn status(&self) -> Value {
        json!({
            "instance": self.instance,
            "bucket": self.settings.bucket,
            "url": self.settings.url,
            "online": self.is_online(),
            "started_from": lock(&self.started_from).as_str(),
            "detail": *lock(&self.detail),
            "kill_switch_pending": lock(&self.pending_kill).is_some(),
            "conflicts": self.conflicts.load(Ordering::Relaxed),
            "changes_received": self.received.load(Ordering::Relaxed),
            "leader": self.leader(),
            "is_leader": self.is_leader(),
            "evidence_from": self.heard_instances(),
            "instances": self.members_json(),
        })
    }

    /// Prometheus lines: connectivity, how the instance started, conflicts, changes
    /// received, and each route's applied revision.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let instance = self.instance.replace('\\', "\\\\").replace('"', "\\\"");
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let _ = writeln!(out, "{name}{{instance=\"{instance}\"}} {value}");
        };
        gauge(
            out,
            "strangler_cluster_connected",
            "1 while the fleet's NATS bucket is reachable; flips are refused while it is 0.",
            "gauge",
            u64::from(self.is_online()),
        );
        gauge(
            out,
            "strangler_cluster_started_offline",
            "1 when this instance started without NATS, from its on-disk copy or routes.toml.",
            "gauge",
            u64::from(*lock(&self.started_from) != StartedFrom::Bucket),
        );
        gauge(
            out,
            "strangler_cluster_conflicts_total",
            "Flips refused because another writer changed the route first.",
            "counter",
            self.conflicts.load(Ordering::Relaxed),
        );
        gauge(
            out,
            "strangler_cluster_changes_received_total",
            "Mode changes received from the bucket and applied.",
            "counter",
            self.received.load(Ordering::Relaxed),
        );
        gauge(
            out,
            "strangler_cluster_leader",
            "1 on the instance that holds the fleet's leader lease: it alone promotes and rolls back.",
            "gauge",
            u64::from(self.is_leader()),
        );
        let members = self.members();
        gauge(
            out,
            "strangler_cluster_instances",
            "Instances of the fleet heard from within three evidence windows, this one included.",
            "gauge",
            members.len() as u64,
        );
        let modes = self.applied();
        let _ = writeln!(
            out,
            "# HELP strangler_cluster_route_revision The bucket revision of each route's applied mode.\n# TYPE strangler_cluster_route_revision gauge"
        );
        for (route, applied) in &modes {
            let _ = writeln!(
                out,
                "strangler_cluster_route_revision{{instance=\"{instance}\",route=\"{route}\"}} {}",
                applied.revision
            );
        }
        let _ = writeln!(
            out,
            "# HELP strangler_cluster_route_applied_instances Instances serving the revision of each route this instance applies.\n# TYPE strangler_cluster_route_applied_instances gauge"
        );
        for (route, applied) in &modes {
            let count = members
                .values()
                .filter(|m| m.routes.get(route) == Some(&applied.revision))
                .count();
            let _ = writeln!(
                out,
                "strangler_cluster_route_applied_instances{{instance=\"{instance}\",route=\"{route}\"}} {count}"
            );
        }
    }
}

/// This machine's host name, for the default instance name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "strangler".to_owned())
}

/// The instance name: `[cluster] instance`, or host name + `:` + the bound listen port.
pub fn instance_name(settings: &ClusterConfig, listen_port: u16) -> String {
    settings
        .instance
        .clone()
        .unwrap_or_else(|| format!("{}:{listen_port}", host_name()))
}
