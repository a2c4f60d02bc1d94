//! The monolith's cross-cutting behaviours, as a stack of layers around every route
//! (outermost first):
//!
//! 1. `identity` — echo or mint `X-Request-Id`; set `Server: legacy-shim/0.1`.
//! 2. a `tower_http` trace span per request.
//! 3. `faults::delay` — the `latency` knob.
//! 4. `faults::inject_errors` — the `error_rate` knob (never `/misc/health`).
//! 5. `compression::mark_compressed` — a gzipped body's ETag becomes weak.
//! 6. `compression::layer` — gzip above 1 KiB for text-like types, never images/downloads.
//! 7. `conditional` — strong ETag from the body, `If-None-Match` → 304, `Vary`.

mod compression;
mod conditional;
mod faults;
mod identity;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::trace::TraceLayer;

use crate::Shop;

/// Wrap the routes in the middleware stack described in the module docs.
pub(crate) fn wrap(routes: Router, shop: Shop) -> Router {
    routes
        .layer(from_fn(conditional::conditional))
        .layer(compression::layer())
        .layer(from_fn(compression::mark_compressed))
        .layer(from_fn_with_state(shop.clone(), faults::inject_errors))
        .layer(from_fn_with_state(shop.clone(), faults::delay))
        .layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(shop, identity::stamp))
}
