//! The admin API on its own listener (127.0.0.1:9901 by default): reads for everyone who can
//! reach it, mutations only with the bearer token.
//!
//! With no token configured the API is read-only (mutations answer 401), and it refuses to
//! start on a non-loopback address at all, so routing control is never open to a network.

mod dashboard;
mod events;
mod flip;
pub mod metrics;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::AdminConfig;
use crate::config::RouteMode;
use crate::proxy::Shared;
use crate::reload::{Outcome, Reloader, Trigger};
use crate::rollout::Gates;
use crate::routing::Route;

/// Admin settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The token file could not be read or is empty.
    #[error("cannot read the admin token from {path}: {detail}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// The token variable is unset or empty.
    #[error(
        "admin.token_env names `{0}`, which is not set or empty; export it or remove token_env"
    )]
    TokenEnv(String),
    /// A non-loopback admin address without a token.
    #[error(
        "the admin API would listen on {0}, which is not a loopback address, without a token; set admin.token_file or admin.token_env, or listen on 127.0.0.1"
    )]
    Exposed(SocketAddr),
}

/// The bearer token admin mutations need.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The token from `token_file` or `token_env`, if either is set.
    pub fn from_config(admin: &AdminConfig, base_dir: &Path) -> Result<Option<Self>, AdminError> {
        if let Some(file) = &admin.token_file {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| AdminError::TokenFile {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(AdminError::TokenFile {
                    path: path.display().to_string(),
                    detail: "the file is empty".into(),
                });
            }
            return Ok(Some(Self(Arc::from(token))));
        }
        if let Some(var) = &admin.token_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(Self(Arc::from(v.trim())))),
                _ => Err(AdminError::TokenEnv(var.clone())),
            };
        }
        Ok(None)
    }

    /// Constant-time comparison with a presented token.
    fn matches(&self, presented: &str) -> bool {
        let a = self.0.as_bytes();
        let b = presented.as_bytes();
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Refuses a non-loopback admin listener without a token.
pub fn check_exposure(addr: SocketAddr, token: Option<&Token>) -> Result<(), AdminError> {
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(AdminError::Exposed(addr));
    }
    Ok(())
}

/// What the admin handlers share.
#[derive(Debug, Clone)]
pub struct State {
    shared: Arc<Shared>,
    reloader: Arc<Reloader>,
    token: Option<Token>,
}

impl State {
    /// State over a running proxy.
    pub fn new(shared: Arc<Shared>, reloader: Arc<Reloader>, token: Option<Token>) -> Self {
        Self {
            shared,
            reloader,
            token,
        }
    }
}

/// The admin API as a router (tests drive it with `oneshot`).
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/dashboard/app.js", get(dashboard::script))
        .route("/dashboard/style.css", get(dashboard::style))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/admin/routes", get(list_routes))
        .route("/admin/routes/{id}", get(one_route).put(flip::flip_route))
        .route("/admin/kill", post(flip::kill_switch))
        .route("/admin/reload", post(reload))
        .route("/admin/diffs", get(diffs))
        .route("/admin/shadow", get(shadow_summaries))
        .route("/metrics", get(prometheus))
        .route("/admin/openapi.json", get(openapi))
        .route("/admin/events/stats", get(events::stats))
        .route("/admin/events/recent", get(events::recent))
        .route("/admin/events/emit", get(emit_rules))
        .with_state(state)
}

/// Serves the admin API until `shutdown`.
pub async fn serve(listener: TcpListener, state: State, shutdown: CancellationToken) {
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn ready(Extract(state): Extract<State>) -> Json<Value> {
    let snapshot = state.shared.snapshot();
    let (applied, rejected) = state.reloader.counts();
    Json(json!({
        "ready": true,
        "generation": snapshot.generation,
        "routes": snapshot.table.routes().len(),
        "reloads": { "applied": applied, "rejected": rejected },
        "cluster": state.reloader.fleet().map(|f| f.status()),
    }))
}

/// A route as the API shows it; `revision` is its version in the fleet's bucket (cluster
/// mode; `null` otherwise or before it reached the bucket) and `applied_by` the live
/// instances serving that revision.
fn route_json(route: &Route, gates: &Gates, revision: Option<(u64, Vec<String>)>) -> Value {
    let (revision, applied_by) = revision.unzip();
    json!({
        "id": &*route.id,
        "mode": route.mode.as_str(),
        "path": &*route.pattern,
        "legacy": &*route.legacy,
        "extracted": route.extracted.as_deref(),
        "canary_percent": route.canary.as_ref().map(|c| c.percent),
        "gate": gates.view(&route.id),
        "revision": revision,
        "applied_by": applied_by,
    })
}

/// `route`'s revision in the fleet's bucket and the instances that applied it, in cluster
/// mode.
fn revision(state: &State, route: &str) -> Option<(u64, Vec<String>)> {
    let fleet = state.reloader.fleet()?;
    let revision = fleet.revision(route)?;
    Some((revision, fleet.applied_by(route, revision)))
}

async fn list_routes(Extract(state): Extract<State>) -> Json<Value> {
    let snapshot = state.shared.snapshot();
    let routes: Vec<Value> = snapshot
        .table
        .routes()
        .iter()
        .map(|r| route_json(r, state.shared.gates(), revision(&state, &r.id)))
        .collect();
    Json(json!({
        "routes": routes,
        "default_upstream": snapshot.table.default_upstream(),
        "generation": snapshot.generation,
        "cluster": state.reloader.fleet().map(|f| f.status()),
    }))
}

async fn one_route(Extract(state): Extract<State>, UrlPath(id): UrlPath<String>) -> Response {
    let snapshot = state.shared.snapshot();
    match snapshot.table.route(&id) {
        Some(route) => Json(route_json(
            route,
            state.shared.gates(),
            revision(&state, &id),
        ))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no route `{id}`") })),
        )
            .into_response(),
    }
}

/// Query of `GET /admin/diffs`.
#[derive(Debug, serde::Deserialize)]
struct DiffQuery {
    /// Only this route.
    route: Option<String>,
    /// At most this many records (default 50, at most 1000).
    limit: Option<usize>,
    /// Only this verdict: equal, noise, regression or skipped.
    verdict: Option<String>,
}

async fn diffs(Extract(state): Extract<State>, Query(query): Query<DiffQuery>) -> Response {
    if let Some(verdict) = query.verdict.as_deref() {
        if !matches!(verdict, "equal" | "noise" | "regression" | "skipped") {
            let error =
                format!("unknown verdict `{verdict}`; use equal, noise, regression or skipped");
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
        }
    }
    let limit = query.limit.unwrap_or(50).min(1000);
    let records =
        state
            .shared
            .shadows()
            .recent(query.route.as_deref(), limit, query.verdict.as_deref());
    Json(json!({ "diffs": records })).into_response()
}

/// The OpenAPI 3.1 description of this API.
const OPENAPI: &str = include_str!("admin/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /metrics` in the Prometheus text format.
async fn prometheus(Extract(state): Extract<State>) -> Response {
    use metrics::{escape, family};
    let snapshot = state.shared.snapshot();
    let modes: std::collections::HashMap<&str, RouteMode> = snapshot
        .table
        .routes()
        .iter()
        .map(|r| (&*r.id, r.mode))
        .collect();
    let mut out = String::with_capacity(16 * 1024);
    state.shared.metrics().render_requests(&mut out, &modes);
    if let Some(fleet) = state.reloader.fleet() {
        fleet.render_metrics(&mut out);
    }

    let summaries = state.shared.shadows().summaries();
    let mut compared = Vec::new();
    let mut skipped = Vec::new();
    for s in &summaries {
        let route = escape(&s.route);
        for (verdict, n) in [
            ("equal", s.equal),
            ("noise", s.noise),
            ("regression", s.regression),
        ] {
            compared.push((format!("route=\"{route}\",verdict=\"{verdict}\""), n as f64));
        }
        for (reason, n) in &s.skipped {
            skipped.push((format!("route=\"{route}\",reason=\"{reason}\""), *n as f64));
        }
    }
    family(
        &mut out,
        "strangler_shadow_comparisons_total",
        "counter",
        "Shadow comparisons by route and verdict.",
        &compared,
    );
    family(
        &mut out,
        "strangler_shadow_skipped_total",
        "counter",
        "Requests not mirrored or not compared, by route and reason.",
        &skipped,
    );
    let candidate = state.shared.shadows().candidate_latency();
    let candidate: Vec<(String, &metrics::Histogram)> = candidate
        .iter()
        .map(|(route, h)| (format!("route=\"{}\"", escape(route)), &**h))
        .collect();
    metrics::histograms(
        &mut out,
        "strangler_shadow_candidate_duration_seconds",
        "Candidate time to the response head in compared shadow exchanges, by route.",
        &candidate,
    );

    let bus = state.shared.events().stats();
    let bus_rows = [
        ("published", bus.published),
        ("spooled", bus.spooled),
        ("replayed", bus.replayed),
        ("dropped_channel_full", bus.dropped_channel_full),
        ("dropped_spool_full", bus.dropped_spool_full),
        ("failed", bus.failed),
    ];
    let samples: Vec<(String, f64)> = bus_rows
        .iter()
        .map(|(o, n)| (format!("outcome=\"{o}\""), *n as f64))
        .collect();
    family(
        &mut out,
        "strangler_bus_events_total",
        "counter",
        "Events by outcome: published, spooled, replayed, dropped, failed.",
        &samples,
    );
    family(
        &mut out,
        "strangler_bus_spool_pending",
        "gauge",
        "Events waiting in the disk spool.",
        &[(String::new(), bus.spool_pending as f64)],
    );
    family(
        &mut out,
        "strangler_bus_queued",
        "gauge",
        "Exchanges and events waiting in memory for the pump (bounded by [bus] channel).",
        &[(String::new(), bus.queued as f64)],
    );

    let (applied, rejected) = state.reloader.counts();
    let reloads = [
        ("result=\"applied\"".to_owned(), applied as f64),
        ("result=\"rejected\"".to_owned(), rejected as f64),
    ];
    family(
        &mut out,
        "strangler_reloads_total",
        "counter",
        "Configuration reloads by result.",
        &reloads,
    );
    family(
        &mut out,
        "strangler_config_generation",
        "gauge",
        "Generation of the running configuration.",
        &[(String::new(), snapshot.generation as f64)],
    );

    let mut modes_rows = Vec::new();
    for route in snapshot.table.routes() {
        for mode in [
            RouteMode::Legacy,
            RouteMode::Shadow,
            RouteMode::Canary,
            RouteMode::Extracted,
            RouteMode::Retired,
        ] {
            let on = if route.mode == mode { 1.0 } else { 0.0 };
            modes_rows.push((
                format!("route=\"{}\",mode=\"{}\"", escape(&route.id), mode.as_str()),
                on,
            ));
        }
    }
    family(
        &mut out,
        "strangler_route_mode",
        "gauge",
        "1 for each route's current mode, 0 for the others.",
        &modes_rows,
    );
    let canary: Vec<(String, f64)> = snapshot
        .table
        .routes()
        .iter()
        .filter(|r| r.mode == RouteMode::Canary)
        .map(|r| {
            (
                format!("route=\"{}\"", escape(&r.id)),
                r.canary.as_ref().map_or(0.0, |c| c.percent),
            )
        })
        .collect();
    family(
        &mut out,
        "strangler_route_canary_percent",
        "gauge",
        "Share of users the new service answers, for routes in canary.",
        &canary,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn shadow_summaries(Extract(state): Extract<State>) -> Json<Value> {
    Json(json!({ "routes": state.shared.shadows().summaries() }))
}

/// `GET /admin/events/emit`: what each `[[routes.emit]]` rule published or skipped, and why.
async fn emit_rules(Extract(state): Extract<State>) -> Json<Value> {
    Json(json!({ "rules": state.shared.snapshot().events.rule_views() }))
}

async fn reload(Extract(state): Extract<State>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        return *refused;
    }
    match state.reloader.reload(Trigger::Admin).await {
        Outcome::Applied { generation } => {
            Json(json!({ "result": "applied", "generation": generation })).into_response()
        }
        Outcome::Unchanged => Json(json!({ "result": "unchanged" })).into_response(),
        Outcome::Rejected(diags) => {
            let errors: Vec<String> = diags.0.iter().map(|d| d.to_string()).collect();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "result": "rejected", "errors": errors })),
            )
                .into_response()
        }
    }
}

/// Mutations need `Authorization: Bearer <token>`; without a configured token, none is allowed.
pub(super) fn authorize(state: &State, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let unauthorized = |why: &str| {
        Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({ "error": why })),
            )
                .into_response(),
        )
    };
    let Some(token) = &state.token else {
        return Err(unauthorized(
            "the admin API is read-only: no admin token is configured (admin.token_file or admin.token_env)",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if token.matches(presented.trim()) {
        Ok(())
    } else {
        Err(unauthorized("missing or wrong bearer token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_needs_token() {
        let public: SocketAddr = "0.0.0.0:9901".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9901".parse().unwrap();
        assert!(check_exposure(public, None).is_err());
        assert!(check_exposure(local, None).is_ok());
        assert!(check_exposure(public, Some(&Token(Arc::from("t")))).is_ok());
    }

    #[test]
    fn openapi_describes_every_route_of_the_router() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let paths = doc["paths"].as_object().expect("paths");
        let source = include_str!("admin.rs");
        for line in source
            .lines()
            .filter(|l| l.trim_start().starts_with(".route(\""))
        {
            let path = line.split('"').nth(1).unwrap_or_default();
            if path.starts_with("/dashboard/") {
                continue;
            }
            assert!(
                paths.contains_key(path),
                "{path} is served but not in openapi.json"
            );
        }
    }

    #[test]
    fn token_compare() {
        let t = Token(Arc::from("secret"));
        assert!(t.matches("secret"));
        assert!(!t.matches("secreT"));
        assert!(!t.matches("secret2"));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }
}
