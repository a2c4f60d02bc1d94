//! Events: what the proxy sees, published as CloudEvents 1.0 (JSON structured mode) onto a
//! bus, so new services can react to what the monolith does without touching it.
//!
//! Every event has a unique `id` (the dedup key consumers use: delivery is at-least-once)
//! and a `correlationid` extension shared by one exchange, its shadow comparison and any
//! decision it caused. Types are versioned (`….v1`); a JSON Schema per type lives in
//! `schemas/` at the repository root.
//!
//! Publishing never blocks the data path: [`Publisher::publish`] puts the event in a bounded
//! in-memory channel and returns.

mod circuit;
pub mod consume;
mod data;
pub mod emit;
pub mod exchange;
mod publisher;
mod pump;
pub mod segment;
pub mod sink;
mod spool;
mod stats;

use serde::{Deserialize, Serialize};

pub use circuit::CircuitState;
pub use data::Data;
pub use publisher::{Publisher, PublisherError, RECENT};
pub use stats::Stats;

/// The CloudEvents spec version this proxy writes.
pub const SPEC_VERSION: &str = "1.0";
/// The `datacontenttype` of every event: `data` is JSON.
pub const CONTENT_TYPE: &str = "application/json";

/// Event types the proxy itself emits (domain events from `emit` rules carry their own).
pub mod types {
    /// One client exchange finished (routed or not).
    pub const EXCHANGE_SEEN: &str = "strangler.exchange.seen.v1";
    /// A shadow comparison finished.
    pub const SHADOW_COMPARED: &str = "strangler.shadow.compared.v1";
    /// A request was not mirrored, or its comparison could not finish.
    pub const SHADOW_SKIPPED: &str = "strangler.shadow.skipped.v1";
    /// A route changed mode.
    pub const ROUTE_CHANGED: &str = "strangler.route.changed.v1";
    /// A rollout advanced a route.
    pub const ROLLOUT_PROMOTED: &str = "strangler.rollout.promoted.v1";
    /// A rollout sent a route back.
    pub const ROLLOUT_ROLLED_BACK: &str = "strangler.rollout.rolled_back.v1";
    /// A new configuration is live.
    pub const CONFIG_RELOADED: &str = "strangler.config.reloaded.v1";
    /// A configuration was refused; the last good one keeps running.
    pub const CONFIG_REJECTED: &str = "strangler.config.rejected.v1";

    /// Every type the proxy emits, for schema checks.
    pub const ALL: [&str; 8] = [
        EXCHANGE_SEEN,
        SHADOW_COMPARED,
        SHADOW_SKIPPED,
        ROUTE_CHANGED,
        ROLLOUT_PROMOTED,
        ROLLOUT_ROLLED_BACK,
        CONFIG_RELOADED,
        CONFIG_REJECTED,
    ];
}

/// A CloudEvents 1.0 event in JSON structured mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique per event; consumers drop a redelivered id.
    pub id: String,
    /// Who emitted it: `strangler://<instance>` for the proxy.
    pub source: String,
    /// The event type, e.g. `strangler.exchange.seen.v1` or `shop.order.placed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened, RFC 3339.
    pub time: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The route it concerns, if any (CloudEvents `subject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Shared by one exchange, its comparison and the decisions it caused (extension).
    pub correlationid: String,
    /// The payload; its shape is the type's JSON Schema.
    pub data: Data,
}

impl Event {
    /// A new event of type `kind` about route `subject` (if any), tied to `correlation`,
    /// happening now: a fresh time-ordered id (UUID v7), the time in RFC 3339 UTC with
    /// milliseconds. Its `source` is left empty: the [`Publisher`] stamps its own
    /// (`strangler://<instance>`) when it accepts the event.
    pub fn new(
        kind: &str,
        subject: Option<&str>,
        correlation: &str,
        data: impl Into<Data>,
    ) -> Self {
        Self::at(
            kind,
            subject,
            correlation,
            data,
            std::time::SystemTime::now(),
        )
    }

    /// Like [`Event::new`], for something that happened `at` (an exchange whose event is
    /// built after the fact, off the connection's task).
    pub fn at(
        kind: &str,
        subject: Option<&str>,
        correlation: &str,
        data: impl Into<Data>,
        at: std::time::SystemTime,
    ) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            source: String::new(),
            kind: kind.to_owned(),
            time: humantime::format_rfc3339_millis(at).to_string(),
            datacontenttype: CONTENT_TYPE.to_owned(),
            subject: subject.map(str::to_owned),
            correlationid: correlation.to_owned(),
            data: data.into(),
        }
    }
}

#[cfg(test)]
mod tests;
