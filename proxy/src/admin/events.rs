//! `GET /admin/events/stats` (what happened to the events: published, spooled, dropped, …)
//! and `GET /admin/events/recent?limit=N` (the last events the publisher accepted, oldest
//! first, at most [`RECENT`]).

use axum::Json;
use axum::extract::{Query, State as Extract};
use serde::Deserialize;
use serde_json::{Value, json};

use super::State;
use crate::events::RECENT;

/// Query of `GET /admin/events/recent`.
#[derive(Debug, Deserialize)]
pub(super) struct RecentQuery {
    /// Events shown at most (default 50).
    limit: Option<usize>,
}

pub(super) async fn stats(Extract(state): Extract<State>) -> Json<Value> {
    let events = state.shared.events();
    let mut body = json!({
        "kind": format!("{:?}", events.kind()).to_lowercase(),
        "enabled": events.is_enabled(),
    });
    if let (Some(body), Ok(Value::Object(stats))) =
        (body.as_object_mut(), serde_json::to_value(events.stats()))
    {
        body.extend(stats);
    }
    Json(body)
}

pub(super) async fn recent(
    Extract(state): Extract<State>,
    Query(query): Query<RecentQuery>,
) -> Json<Value> {
    let limit = query.limit.unwrap_or(50).min(RECENT);
    Json(json!({ "events": state.shared.events().recent(limit) }))
}
