//! Who answered and which request it was: `Server: legacy-shim/0.1` and `X-Request-Id` on
//! every response. An incoming id is echoed (and passed on to handlers); otherwise one is
//! minted — random, or counter-based when the shop must be deterministic.

use axum::extract::{Request, State};
use axum::http::header::SERVER;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::Shop;

/// The request id header.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The `Server` header value.
const SERVER_NAME: HeaderValue = HeaderValue::from_static("legacy-shim/0.1");

/// Whether an incoming request id is reasonable to echo.
fn acceptable(value: &HeaderValue) -> bool {
    (1..=200).contains(&value.len()) && value.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// Stamp the request and its response with a request id, and the response with `Server`.
pub(crate) async fn stamp(State(shop): State<Shop>, mut request: Request, next: Next) -> Response {
    let id = match request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| acceptable(v))
    {
        Some(id) => id.clone(),
        None => HeaderValue::from_str(&shop.next_request_id())
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

    use crate::test_support::{call, get, router, shop_with};
    use crate::{Options, app};

    #[tokio::test]
    async fn every_answer_has_server_and_a_request_id() {
        let app = router();
        for path in ["/", "/api/products", "/nowhere", "/api/nowhere"] {
            let reply = get(&app, path).await;
            assert_eq!(reply.header("server"), "legacy-shim/0.1", "{path}");
            assert!(
                reply
                    .header("x-request-id")
                    .starts_with("00000000-0000-4000-8000-"),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn incoming_ids_are_echoed_and_stable_ids_count() {
        let app = router();
        let req = Request::get("/misc/health")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app, req).await.header("x-request-id"), "abc-123");
        let fresh = router();
        assert_eq!(
            get(&fresh, "/").await.header("x-request-id"),
            "00000000-0000-4000-8000-000000000001"
        );
        assert_eq!(
            get(&fresh, "/").await.header("x-request-id"),
            "00000000-0000-4000-8000-000000000002"
        );
    }

    #[tokio::test]
    async fn varying_ids_are_uuid_v4() {
        let app = app(shop_with(Options::default()));
        let id = get(&app, "/").await.header("x-request-id").to_owned();
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }
}
