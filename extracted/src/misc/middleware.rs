//! The monolith's cross-cutting behaviours for `/misc`, reproduced as a stack of layers
//! around every route (outermost first):
//!
//! 1. `identity` — echo or mint `X-Request-Id`; set the monolith's `Server` value.
//! 2. a `tower_http` trace span per request.
//! 3. `compression::mark_compressed` — a gzipped body's ETag becomes weak.
//! 4. `compression::layer` — gzip above 1 KiB for text-like types, never images/downloads.
//! 5. `conditional` — strong ETag from the body, `If-None-Match` → 304, `Vary`.
//!
//! The monolith's fault-injection knobs (latency, error rate) are test props of the
//! monolith, not behaviour clients rely on, so they are not reproduced.

pub(crate) mod compression;
pub(crate) mod conditional;
mod identity;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::trace::TraceLayer;

use super::Service;

/// Wrap the routes in the middleware stack described in the module docs.
pub(crate) fn wrap(routes: Router, service: Service) -> Router {
    routes
        .layer(from_fn(conditional::conditional))
        .layer(compression::layer())
        .layer(from_fn(compression::mark_compressed))
        .layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(service, identity::stamp))
}
