//! `PUT /admin/routes/{id}` and `POST /admin/kill`: flips through the proxy's one write path
//! ([`rollout::write`]: the routes file, or the fleet's bucket in cluster mode), applied at
//! once rather than when the watcher notices.

use axum::Json;
use axum::extract::{Path as UrlPath, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{State, authorize};
use crate::config::RouteMode;
use crate::reload::{Outcome, Trigger};
use crate::rollout::{self, Flip, FlipError, Stage, Target};

/// Body of `PUT /admin/routes/{id}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FlipBody {
    /// The new mode.
    mode: RouteMode,
    /// Canary percentage (mode canary).
    percent: Option<f64>,
    /// Allow transitions that skip evidence.
    #[serde(default)]
    force: bool,
    /// Why (audit journal, route-changed event).
    reason: Option<String>,
    /// Cluster mode: the revision the caller saw (from `GET /admin/routes`); the flip is
    /// refused with 409 when the route changed since.
    revision: Option<u64>,
}

/// Body of `POST /admin/kill`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KillBody {
    /// Why.
    reason: Option<String>,
    /// Also move retired routes back.
    #[serde(default)]
    force: bool,
}

pub(super) async fn flip_route(
    Extract(state): Extract<State>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Json<FlipBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        return *refused;
    }
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.body_text() })),
            )
                .into_response();
        }
    };
    if body.revision.is_some() && state.reloader.fleet().is_none() {
        let error =
            "`revision` only applies in cluster mode ([cluster] in routes.toml); leave it out";
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    }
    let flip = Flip {
        target: Target::Route(id),
        to: Stage {
            mode: body.mode,
            percent: body.percent,
        },
        force: body.force,
        by: "admin".into(),
        reason: body.reason,
        correlation: None,
        revision: body.revision,
    };
    apply_flip(&state, flip).await
}

pub(super) async fn kill_switch(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    body: Option<Json<KillBody>>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        return *refused;
    }
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let flip = Flip {
        target: Target::All,
        to: Stage::new(RouteMode::Legacy),
        force: body.force,
        by: "admin".into(),
        reason: body.reason.or_else(|| Some("kill switch".into())),
        correlation: None,
        revision: None,
    };
    apply_flip(&state, flip).await
}

/// Writes the flip and applies it at once (not waiting for the watcher).
async fn apply_flip(state: &State, flip: Flip) -> Response {
    let changes = match rollout::write(&state.reloader, flip).await {
        Ok(changes) => changes,
        Err(e) => {
            let status = match e {
                FlipError::Transition { .. }
                | FlipError::Invalid { .. }
                | FlipError::Conflict { .. } => StatusCode::CONFLICT,
                FlipError::File(_) => StatusCode::NOT_FOUND,
                FlipError::Offline(_) => StatusCode::SERVICE_UNAVAILABLE,
                FlipError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return (status, Json(json!({ "error": e.to_string() }))).into_response();
        }
    };
    let outcome = state.reloader.reload(Trigger::Admin).await;
    let generation = match outcome {
        Outcome::Applied { generation } => Some(generation),
        _ => None,
    };
    // Cluster mode: the revision each changed route has now, for the next compare-and-set.
    let revisions: Option<serde_json::Map<String, serde_json::Value>> =
        state.reloader.fleet().map(|fleet| {
            changes
                .iter()
                .map(|c| (c.route.clone(), json!(fleet.revision(&c.route))))
                .collect()
        });
    Json(json!({ "changes": changes, "generation": generation, "revisions": revisions }))
        .into_response()
}
