//! Which request it was, and who answered: `X-Request-Id` and `Server` on every response.
//!
//! An incoming request id is echoed (and passed on to handlers); otherwise one is minted —
//! random, or counter-based when the service must be deterministic — in the monolith's format.
//!
//! `Server` carries the monolith's value on purpose: clients and caches have seen it for
//! years, and while the route is shadowed or canaried the two answers must not differ in it.
//! Announcing the new service's own name is a separate, deliberate contract change for when
//! the monolith's route is retired.

use axum::extract::{Request, State};
use axum::http::header::SERVER;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::misc::Service;

/// The request id header.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The `Server` header value: the monolith's (see the module docs).
const SERVER_NAME: HeaderValue = HeaderValue::from_static("legacy-shim/0.1");

/// Whether an incoming request id is reasonable to echo.
fn acceptable(value: &HeaderValue) -> bool {
    (1..=200).contains(&value.len()) && value.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// Stamp the request and its response with a request id, and the response with `Server`.
pub(crate) async fn stamp(
    State(service): State<Service>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = match request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| acceptable(v))
    {
        Some(id) => id.clone(),
        None => HeaderValue::from_str(&service.next_request_id())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
    };
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), id.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(X_REQUEST_ID.clone(), id);
    headers.insert(SERVER, SERVER_NAME);
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;

    use crate::misc::Options;
    use crate::misc::test_support::{call, get, router, router_with};

    #[tokio::test]
    async fn ids_are_echoed_or_counted() {
        let app = router();
        assert_eq!(
            get(&app, "/misc/health").await.header("x-request-id"),
            "00000000-0000-4000-8000-000000000001"
        );
        assert_eq!(
            get(&app, "/misc/nope").await.header("x-request-id"),
            "00000000-0000-4000-8000-000000000002"
        );
        let req = Request::get("/misc/health")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap();
        let reply = call(&app, req).await;
        assert_eq!(reply.header("x-request-id"), "abc-123");
        assert_eq!(reply.header("server"), "legacy-shim/0.1");
    }

    #[tokio::test]
    async fn varying_ids_are_uuid_v4() {
        let app = router_with(Options::default());
        let id = get(&app, "/misc/health")
            .await
            .header("x-request-id")
            .to_owned();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    }
}
