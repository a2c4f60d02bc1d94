//! The monolith's cross-cutting behaviours for the pages, as a stack of layers around every
//! route (outermost first):
//!
//! 1. `stamp` — echo or mint `X-Request-Id` (handlers read it with [`RequestId`] and pass it
//!    to the API); set the monolith's `Server` value (see `misc::middleware` for why).
//! 2. a `tower_http` trace span per request.
//! 3. gzip above 1 KiB for HTML, the compressed body's ETag weak (`misc::middleware`).
//! 4. strong ETag from the body, `If-None-Match` → 304, `Vary` (`misc::middleware`).

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::SERVER;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use tower_http::trace::TraceLayer;

use super::Front;
use crate::misc::middleware::{compression, conditional};

/// The request id header.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The `Server` header value: the monolith's.
const SERVER_NAME: HeaderValue = HeaderValue::from_static("legacy-shim/0.1");

/// Wrap the page routes in the stack described in the module docs.
pub(crate) fn wrap(routes: Router, front: Front) -> Router {
    routes
        .layer(from_fn(conditional::conditional))
        .layer(compression::layer())
        .layer(from_fn(compression::mark_compressed))
        .layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(front, stamp))
}

/// Whether an incoming request id is reasonable to echo.
fn acceptable(value: &HeaderValue) -> bool {
    (1..=200).contains(&value.len()) && value.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

/// Stamp the request and its response with a request id, and the response with `Server`.
async fn stamp(State(front): State<Front>, mut request: Request, next: Next) -> Response {
    let id = match request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| acceptable(v))
    {
        Some(id) => id.clone(),
        None => HeaderValue::from_str(&front.next_request_id())
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

/// The request's id (set by `stamp`), for the API calls a page makes.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        Ok(RequestId(id.to_owned()))
    }
}
