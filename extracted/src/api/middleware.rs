//! The monolith's cross-cutting behaviours for `/api`, as a stack of layers around every
//! route (outermost first), the same stack the misc service uses:
//!
//! 1. `stamp` — echo or mint `X-Request-Id`; set the monolith's `Server` value (while a route
//!    is shadowed or canaried the two answers must not differ in it).
//! 2. a `tower_http` trace span per request.
//! 3. `compression::mark_compressed` — a gzipped body's ETag becomes weak.
//! 4. `compression::layer` — gzip above 1 KiB for text-like types.
//! 5. `conditional` — strong ETag from the body, `If-None-Match` → 304, `Vary`.
//!
//! Layers 3–5 are the misc service's (`misc::middleware`): one implementation of the
//! monolith's ETag and gzip rules for every extracted service.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::SERVER;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use tower_http::trace::TraceLayer;

use super::Api;
use crate::misc::middleware::{compression, conditional};

/// The request id header.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The `Server` header value: the monolith's.
const SERVER_NAME: HeaderValue = HeaderValue::from_static("legacy-shim/0.1");

/// Wrap the routes in the middleware stack described in the module docs.
pub(crate) fn wrap(routes: Router, api: Api) -> Router {
    routes
        .layer(from_fn(conditional::conditional))
        .layer(compression::layer())
        .layer(from_fn(compression::mark_compressed))
        .layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(api, stamp))
}

/// Whether an incoming request id is reasonable to echo.
fn acceptable(value: &HeaderValue) -> bool {
    (1..=200).contains(&value.len()) && value.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// Stamp the request and its response with a request id, and the response with `Server`.
async fn stamp(State(api): State<Api>, mut request: Request, next: Next) -> Response {
    let id = match request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| acceptable(v))
    {
        Some(id) => id.clone(),
        None => HeaderValue::from_str(&api.next_request_id())
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
