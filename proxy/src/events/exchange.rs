//! The payloads of the proxy's own events, and the watch on each exchange that publishes them.
//!
//! Each payload is a serde struct: its `///` docs are the contract consumers (and the JSON
//! Schemas in `schemas/`) follow. `plan` precomputes per route what an exchange event
//! captures (header allow-list, bodies, emit rules); `probe` follows one exchange and
//! publishes once its response body has gone to the client — never before, never in the way.
//!
//! Never: copy a body that nothing asked for, or let `authorization`, `cookie`, `set-cookie`
//! or `proxy-authorization` values leave the proxy (they are always `"[redacted]"`).

mod body;
mod plan;
mod probe;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::{Diagnostics, RawConfig, RouteConfig, RouteMode};
use crate::events::{Data, Event, types};
use crate::shadow::Record;

pub use plan::{Plans, RoutePlan};
pub(crate) use probe::Finished;
pub use probe::Probe;

/// Differences carried by a `shadow.compared` event at most (the admin API keeps more).
pub const SHADOW_DIFFERENCES: usize = 10;

/// What a redacted header's value becomes.
pub const REDACTED: &str = "[redacted]";

/// `strangler.exchange.seen.v1`: one client exchange, routed or not, published when its
/// response body has been sent (or the client went away). Subject: the route id, absent for
/// an unrouted exchange. Correlation: the exchange's request id (`x-request-id`).
///
/// Readers use the defaults of `S` (text) and `M` (maps of text). The proxy writes one from
/// what it already holds (`&str`, the message's own header map) instead of copying every
/// string for each exchange it publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeSeen<S = String, M = BTreeMap<String, String>> {
    /// The route that took the request; `null` when none matched (the default upstream
    /// answered) or the request was refused before routing.
    pub route: Option<S>,
    /// The route's mode: `legacy`, `shadow`, `canary`, `extracted` or `retired`; `null` when
    /// unrouted.
    pub mode: Option<S>,
    /// Request method, e.g. `POST`.
    pub method: S,
    /// The route's `match.path` (`/api/products/{sku}`); `null` when unrouted.
    pub path_template: Option<S>,
    /// Request path as received, without the query.
    pub path: S,
    /// Path parameters of the template, percent-decoded: `{"sku": "A-1"}`.
    pub params: M,
    /// The raw query string (without `?`), `null` when there was none.
    pub query: Option<S>,
    /// The status the client got (a proxy error such as 502 included).
    pub status: u16,
    /// Name of the upstream that answered; `null` when none was chosen.
    pub upstream: Option<S>,
    /// Which side answered: `legacy` or `extracted`.
    pub side: S,
    /// Timings from the request's arrival.
    pub latency: Latency,
    /// Body sizes as they went over the wire.
    pub sizes: Sizes,
    /// Request headers on the route's allow-list (default: content-type, content-length,
    /// user-agent, accept, location, x-request-id); repeated fields joined by `, `;
    /// credentials always `"[redacted]"`.
    pub request_headers: M,
    /// Response headers on the allow-list, as the client got them; same rules.
    pub response_headers: M,
    /// The request body, when the route has `events = { bodies = true }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<BodyCopy>,
    /// The response body (decoded from gzip, deflate or br), when the route has
    /// `events = { bodies = true }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<BodyCopy>,
    /// Whether the response body reached its end (`false`: the client went away or the
    /// upstream broke off).
    pub complete: bool,
}

/// Time to first byte and to the end of the body, in milliseconds (fractional).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    /// From the request's arrival to the response head going to the client.
    pub ttfb_ms: f64,
    /// From the request's arrival to the end of the response body.
    pub total_ms: f64,
}

/// Body sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sizes {
    /// Request body bytes read from the client.
    pub request_bytes: u64,
    /// Response body bytes sent to the client (before any decoding).
    pub response_bytes: u64,
}

/// A copy of a body, capped at the route's `events.max_body`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyCopy {
    /// `utf8` when `data` is the text itself, `base64` when the bytes are not UTF-8.
    pub encoding: String,
    /// The (first `max_body`) bytes.
    pub data: String,
    /// Whether the body was longer than what `data` holds.
    pub truncated: bool,
}

/// `strangler.shadow.compared.v1`: a shadow comparison finished. Subject: the route id.
/// Correlation: the mirrored exchange's request id, as in its `exchange.seen` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowCompared {
    /// The route id.
    pub route: String,
    /// The exchange's correlation id.
    pub correlation: String,
    /// Request method.
    pub method: String,
    /// Request path and query.
    pub path: String,
    /// `equal`, `noise` or `regression`.
    pub verdict: String,
    /// The first differences (at most 10).
    pub differences: Vec<Difference>,
    /// How many differences there were in all.
    pub total: usize,
    /// Both sides' timings.
    pub latency: LatencyPair,
    /// Learning pairs behind the route's noise baseline when this was judged.
    pub baseline_samples: u64,
}

/// One difference between the legacy and the candidate answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// RFC 6901 pointer: `/status`, `/headers/NAME` or `/body/...`.
    pub pointer: String,
    /// The legacy value; absent when legacy had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<serde_json::Value>,
    /// The candidate value; absent when the candidate had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<serde_json::Value>,
    /// Whether the noise baseline or an ignore rule explains it.
    pub noise: bool,
}

/// Legacy and candidate timings of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyPair {
    /// The legacy (primary) answer.
    pub legacy: Latency,
    /// The candidate's answer.
    pub candidate: Latency,
}

/// `strangler.shadow.skipped.v1`: a request of a shadowed route was not mirrored, or its
/// comparison could not finish. Requests merely sampled out are only counted, never
/// published. Subject: the route id. Correlation: the exchange's request id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowSkipped {
    /// The route id.
    pub route: String,
    /// The exchange's correlation id.
    pub correlation: String,
    /// Why: `method_not_allowed`, `body_too_large`, `queue_full`, `concurrency_limit`,
    /// `candidate_timeout`, `candidate_error`, `request_incomplete`, `primary_incomplete`,
    /// `response_too_large` or `no_candidate`.
    pub reason: String,
    /// Request method.
    pub method: String,
    /// Request path and query.
    pub path: String,
}

/// `strangler.config.reloaded.v1`: a new configuration is live. No subject. Correlation: a
/// fresh id, shared with the `route.changed` events of the same reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigReloaded {
    /// The new snapshot's generation (1 at start, +1 per applied reload).
    pub generation: u64,
    /// What caused it: `file`, `signal` or `admin`.
    pub trigger: String,
    /// Routes in the new configuration.
    pub routes: usize,
    /// Routes present before and after whose mode changed.
    pub changed: Vec<ModeChange>,
}

/// One route's mode change (a new canary share counts as one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeChange {
    /// The route id.
    pub route: String,
    /// The mode before.
    pub from: String,
    /// The mode now.
    pub to: String,
    /// The canary share before, when the route was in `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_percent: Option<f64>,
    /// The canary share now, when the route is in `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_percent: Option<f64>,
}

/// `strangler.config.rejected.v1`: a configuration was refused; the last good one keeps
/// running. No subject. Correlation: a fresh id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRejected {
    /// What caused the attempt: `file`, `signal` or `admin`.
    pub trigger: String,
    /// Every problem, one line each (`routes.toml:12:1: routes[0].mode: …`).
    pub errors: Vec<String>,
}

/// `strangler.route.changed.v1`: a route's mode changed. Subject: the route id.
/// Correlation: that of the reload that applied it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteChanged {
    /// The route id.
    pub route: String,
    /// The mode before.
    pub from: String,
    /// The mode now.
    pub to: String,
    /// The canary share before, when the route was in `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_percent: Option<f64>,
    /// The canary share now, when the route is in `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_percent: Option<f64>,
    /// Who changed it: `file` (an edit), `admin` (an API call) or `signal` (SIGHUP).
    pub by: String,
    /// Why, when known (a rollout decision); `null` for a plain edit.
    pub reason: Option<String>,
}

/// Milliseconds as a float with microsecond precision, for JSON.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

// === building events ===

/// An event of `kind` carrying `payload`, happening now; `None` only if the payload cannot
/// be serialized.
pub(crate) fn event(
    kind: &str,
    subject: Option<&str>,
    correlation: &str,
    payload: &impl Serialize,
) -> Option<Event> {
    event_at(kind, subject, correlation, payload, SystemTime::now())
}

/// An event of `kind` carrying `payload` that happened `at`.
pub(crate) fn event_at(
    kind: &str,
    subject: Option<&str>,
    correlation: &str,
    payload: &impl Serialize,
    at: SystemTime,
) -> Option<Event> {
    match Data::from_payload(payload) {
        Ok(data) => Some(Event::at(kind, subject, correlation, data, at)),
        Err(e) => {
            tracing::warn!(kind, error = %e, "event payload not serializable; dropped");
            None
        }
    }
}

/// The event of a finished shadow record: `shadow.compared`, or `shadow.skipped` with its
/// reason. Records of requests merely sampled out never get here (they are only counted).
pub fn shadow_event(record: &Record) -> Option<Event> {
    let subject = Some(record.route.as_str());
    if let Some(reason) = record.reason {
        let skipped = ShadowSkipped {
            route: record.route.clone(),
            correlation: record.correlation.clone(),
            reason: reason.to_owned(),
            method: record.method.clone(),
            path: record.path.clone(),
        };
        return event(
            types::SHADOW_SKIPPED,
            subject,
            &record.correlation,
            &skipped,
        );
    }
    let l = &record.latency;
    let compared = ShadowCompared {
        route: record.route.clone(),
        correlation: record.correlation.clone(),
        method: record.method.clone(),
        path: record.path.clone(),
        verdict: record.verdict.to_owned(),
        differences: record
            .differences
            .iter()
            .take(SHADOW_DIFFERENCES)
            .map(|d| Difference {
                pointer: d.pointer.clone(),
                legacy: d.legacy.clone(),
                candidate: d.candidate.clone(),
                noise: d.noise,
            })
            .collect(),
        total: record.total_differences,
        latency: LatencyPair {
            legacy: Latency {
                ttfb_ms: l.legacy_ttfb_ms,
                total_ms: l.legacy_total_ms,
            },
            candidate: Latency {
                ttfb_ms: l.candidate_ttfb_ms,
                total_ms: l.candidate_total_ms,
            },
        },
        baseline_samples: record.baseline_samples,
    };
    event(
        types::SHADOW_COMPARED,
        subject,
        &record.correlation,
        &compared,
    )
}

/// Routes present in both configurations whose mode (or canary share) differs, in the new
/// file's order.
pub fn mode_changes(before: &RawConfig, after: &RawConfig) -> Vec<ModeChange> {
    after
        .routes
        .iter()
        .filter_map(|route| {
            let old = before.routes.iter().find(|r| r.id == route.id)?;
            let (from_percent, to_percent) = (canary_share(old), canary_share(route));
            (old.mode != route.mode || from_percent != to_percent).then(|| ModeChange {
                route: route.id.clone(),
                from: old.mode.as_str().to_owned(),
                to: route.mode.as_str().to_owned(),
                from_percent,
                to_percent,
            })
        })
        .collect()
}

/// The share of users a route in `canary` sends to the new service.
fn canary_share(route: &RouteConfig) -> Option<f64> {
    (route.mode == RouteMode::Canary)
        .then(|| route.canary.as_ref().map(|c| c.percent))
        .flatten()
}

/// Who caused a route's mode change, as the audit journal recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// An admin token's name, `cli`, `rollout`.
    pub by: String,
    /// Why, if given.
    pub reason: Option<String>,
    /// The correlation id of the decision that made the change, if one did.
    pub correlation: Option<String>,
}

/// The events of an applied reload: `config.reloaded`, then a `route.changed` per mode change,
/// all under one fresh correlation id — except a change an automatic decision caused, whose
/// `route.changed` carries that decision's correlation id.
pub fn reloaded_events(
    generation: u64,
    trigger: &str,
    routes: usize,
    changed: Vec<ModeChange>,
    who: impl Fn(&ModeChange) -> Option<Cause>,
) -> Vec<Event> {
    let correlation = uuid::Uuid::now_v7().to_string();
    let mut events = Vec::with_capacity(changed.len() + 1);
    for change in &changed {
        let Cause {
            by,
            reason,
            correlation: decision,
        } = who(change).unwrap_or_else(|| Cause {
            by: trigger.to_owned(),
            reason: None,
            correlation: None,
        });
        let payload = RouteChanged {
            route: change.route.clone(),
            from: change.from.clone(),
            to: change.to.clone(),
            from_percent: change.from_percent,
            to_percent: change.to_percent,
            by,
            reason,
        };
        events.extend(event(
            types::ROUTE_CHANGED,
            Some(&change.route),
            decision.as_deref().unwrap_or(&correlation),
            &payload,
        ));
    }
    let reloaded = ConfigReloaded {
        generation,
        trigger: trigger.to_owned(),
        routes,
        changed,
    };
    let head = event(types::CONFIG_RELOADED, None, &correlation, &reloaded);
    head.into_iter().chain(events).collect()
}

/// The event of a refused configuration.
pub fn rejected_event(trigger: &str, errors: &Diagnostics) -> Option<Event> {
    let payload = ConfigRejected {
        trigger: trigger.to_owned(),
        errors: errors.iter().map(ToString::to_string).collect(),
    };
    let correlation = uuid::Uuid::now_v7().to_string();
    event(types::CONFIG_REJECTED, None, &correlation, &payload)
}
