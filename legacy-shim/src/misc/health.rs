//! `GET /misc/health`: liveness for load balancers and the proxy. Never failed by the
//! error-rate knob.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Shop;

/// The health answer.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    time: String,
}

/// `GET /misc/health` → `{"status": "ok", "version", "uptime_seconds", "time"}`.
pub(crate) async fn health(State(shop): State<Shop>) -> Response {
    let body = Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: shop.clock().uptime_seconds(),
        time: shop.clock().timestamp(),
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

    use crate::test_support::{get, router};

    #[tokio::test]
    async fn reports_ok() {
        let reply = get(&router(), "/misc/health").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(
            reply.text(),
            format!(
                r#"{{"status":"ok","version":"{}","uptime_seconds":0,"time":"2026-01-01T00:00:00Z"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
