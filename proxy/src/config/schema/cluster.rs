//! `[cluster]`: several strangler instances sharing route modes through a NATS JetStream
//! key-value bucket. Absent (the default), an instance reads its modes from routes.toml alone.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a fleet keeps its shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterKind {
    /// A NATS JetStream key-value bucket.
    Nats,
}

/// `[cluster]`: which store the fleet shares and who this instance is in it. Read when the
/// proxy starts; a change needs a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The store (only `nats` today); required so that turning cluster mode on is explicit.
    pub kind: ClusterKind,
    /// Server URL (default `nats://127.0.0.1:4222`).
    #[serde(default = "default_url")]
    pub url: String,
    /// KV bucket holding one key per route (default `strangler`); created on first start.
    /// Unique names let fleets (and tests) share a server.
    #[serde(default = "default_bucket")]
    pub bucket: String,
    /// This instance's name in the fleet (default: host name + `:` + listen port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// How often each instance publishes its promotion evidence to the fleet (default 10 s);
    /// an instance not heard from for three windows no longer counts.
    #[serde(default = "default_evidence_window", with = "humantime_serde")]
    pub evidence_window: Duration,
    /// How long the leader's lease lasts without a refresh (default 10 s): the longest the
    /// fleet goes without a decider when the leader dies.
    #[serde(default = "default_lease_ttl", with = "humantime_serde")]
    pub lease_ttl: Duration,
}

fn default_url() -> String {
    "nats://127.0.0.1:4222".into()
}

fn default_bucket() -> String {
    "strangler".into()
}

fn default_evidence_window() -> Duration {
    Duration::from_secs(10)
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(10)
}
