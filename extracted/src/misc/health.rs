//! `GET /misc/health`: liveness for load balancers and the proxy.
//!
//! Same shape as the monolith's: `{"status","version","uptime_seconds","time"}`, in that
//! order, with `Cache-Control: no-store`. `uptime_seconds` counts from this service's start
//! and `version` is this crate's, so both may legitimately differ from the monolith's when
//! the clock runs (they are equal when stable and while the versions agree).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Service;

/// The health answer, fields in the monolith's wire order.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    time: String,
}

/// `GET /misc/health` → 200 `{"status": "ok", …}`.
pub(crate) async fn health(State(service): State<Service>) -> Response {
    let body = Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: service.clock().uptime_seconds(),
        time: service.clock().timestamp(),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::misc::test_support::{get, router};

    #[tokio::test]
    async fn reports_ok() {
        let reply = get(&router(), "/misc/health").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.header("cache-control"), "no-store");
        let expected = format!(
            r#"{{"status":"ok","version":"{}","uptime_seconds":0,"time":"2026-01-01T00:00:00Z"}}"#,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(reply.text(), expected);
    }
}
