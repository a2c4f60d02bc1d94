//! A route's event keys: `events` (what its exchange events carry, or `false` to publish none)
//! and `[[routes.emit]]` (domain events derived from its traffic).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::units::ByteSize;

/// `events = false`, or `events = { headers = […], bodies = true, max_body = "16KiB" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RouteEvents {
    /// `false` keeps the route's exchanges off the bus (its `emit` rules still run);
    /// `true` is the default.
    Enabled(bool),
    /// Published, carrying these details.
    Settings(ExchangeEventsConfig),
}

/// `events = { … }`: what a route's exchange events carry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeEventsConfig {
    /// Request and response headers copied into the event, replacing the default list
    /// (content-type, content-length, user-agent, accept, location, x-request-id).
    /// `authorization`, `cookie`, `set-cookie` and `proxy-authorization` are always
    /// `"[redacted]"`, even when listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<String>>,
    /// Whether request and response bodies are copied into the event (up to `max_body`).
    pub bodies: bool,
    /// Most bytes of each body copied (default 16 KiB); a longer one is marked truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body: Option<ByteSize>,
}

/// `[[routes.emit]]`: a domain event published when an exchange of the route matches `when`,
/// with `data` taken from the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitConfig {
    /// The CloudEvents type, e.g. `shop.order.placed` (dot-separated names).
    #[serde(rename = "type")]
    pub kind: String,
    /// Which exchanges publish it (default: any method, any 2xx status).
    #[serde(default)]
    pub when: EmitWhen,
    /// Event field → where its value comes from: `request:/json/pointer`,
    /// `response:/json/pointer`, `param:NAME`, `header:NAME` or `response_header:NAME`.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// `when = { methods = […], status = […] }` of an emit rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmitWhen {
    /// Request methods; empty means any.
    pub methods: Vec<String>,
    /// Response statuses: codes (`201`) or classes (`"2xx"`); empty means any 2xx.
    pub status: Vec<StatusMatch>,
}

/// One entry of `when.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StatusMatch {
    /// One status code, e.g. `201`.
    Code(u16),
    /// A class such as `"2xx"` (or a code written as a string, `"201"`).
    Class(String),
}
