//! The misc service: the monolith's `/misc` endpoints, re-implemented as a new service.
//!
//! It answers every `/misc` request exactly as legacy-shim does — same status codes, content
//! types, `ETag`/`Cache-Control`/`Content-Disposition`/`Vary`, JSON field names and order,
//! number formatting and error answers — so the proxy's shadow diff finds the two equal.
//! The contract tests (`contract`) send the same requests to both and compare.
//!
//! ## Modules
//!
//! | module       | its job |
//! |--------------|---------|
//! | `health`     | `GET /misc/health` |
//! | `currency`   | `GET /misc/currency`: the fixed rate table and its exact rounding |
//! | `feeds`      | `GET /misc/feed.rss` and `/misc/feed.atom` |
//! | `export`     | `GET /misc/export.csv`, streamed in chunks |
//! | `thumbnail`  | `GET`/`POST /misc/thumbnail`: PNG thumbnails with the `image` crate |
//! | `download`   | `GET /misc/download`: a streamed pattern with an exact length |
//! | `ws`         | `GET /misc/ws`: the WebSocket echo |
//! | `catalogue`  | the service's own data: the monolith's seed, kept in step by its order and product events |
//! | `pictures`   | pictures uploaded to the monolith since, copied by the thumbnail worker |
//! | `clock`      | what varies between runs: timestamps, uptime, ids |
//! | `middleware` | request ids and `Server`, gzip, ETag/304 — the monolith's cross-cutting behaviour |
//! | `error`      | `Problem`: the one place a failure becomes the client's (JSON) answer |
//!
//! ## How a request flows
//!
//! hyper → `middleware::identity` → trace span → gzip (`middleware::compression`) →
//! `middleware::conditional` (ETag, `If-None-Match` → 304) → the route's handler.
//!
//! The service owns no database: what the monolith's misc endpoints read from the shop's
//! database (products, orders, seed pictures) comes from `catalogue`, the same seed the
//! monolith starts with, to which the order consumer (`crate::worker::orders`) applies the
//! orders and product edits the monolith takes since; pictures uploaded since come from the
//! picture store that the thumbnail worker (`crate::worker::thumbnails`) fills from its events.

pub(crate) mod catalogue;
pub(crate) mod clock;
mod currency;
mod download;
mod error;
mod export;
mod feeds;
mod health;
pub(crate) mod middleware;
mod pictures;
pub(crate) mod thumbnail;
mod ws;

#[cfg(test)]
pub(crate) mod contract;
#[cfg(test)]
pub(crate) mod test_support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::http::header::{HeaderName, LOCATION};
use axum::routing::get;

pub use catalogue::{Applied, Catalogue};
use clock::Clock;
pub use pictures::{PictureError, PictureStore};

/// Knobs for tests and the demo.
#[derive(Debug, Clone)]
pub struct Options {
    /// `true` (default): timestamps are "now" and generated ids are random, like the monolith
    /// in production. `false`: fixed timestamps (2026-01-01T00:00:00Z) and counter-based ids,
    /// matching legacy-shim's `vary = false`, so both answer byte for byte the same.
    pub vary: bool,
    /// `false` (default): currency results are rounded half away from zero, as the monolith
    /// does. `true`: they are rounded half-to-even ("banker's rounding") — the realistic
    /// first-version defect that the shadow diff catches: an exact half cent such as
    /// `amount=0.125&from=USD&to=USD` gives 0.12 instead of the monolith's 0.13.
    pub defect: bool,
    /// Pictures uploaded to the monolith since it started, filled by the thumbnail worker
    /// (default `None`: only the seed pictures are known).
    pub pictures: Option<PictureStore>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vary: true,
            defect: false,
            pictures: None,
        }
    }
}

/// The service's state: knobs, clock and catalogue. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub(crate) struct Service {
    inner: Arc<ServiceInner>,
}

struct ServiceInner {
    /// The knobs this service was started with.
    options: Options,
    /// Timestamps and uptime, fixed or varying per `options.vary`.
    clock: Clock,
    /// Products, orders and seed pictures, shared with the order consumer.
    catalogue: Catalogue,
    /// Source of deterministic request ids when `options.vary` is false.
    request_seq: AtomicU64,
}

impl Service {
    fn new(options: Options, catalogue: Option<Catalogue>) -> Service {
        let clock = Clock::new(options.vary);
        let catalogue = catalogue.unwrap_or_else(|| Catalogue::seeded(&clock));
        Service {
            inner: Arc::new(ServiceInner {
                options,
                clock,
                catalogue,
                request_seq: AtomicU64::new(0),
            }),
        }
    }

    fn options(&self) -> &Options {
        &self.inner.options
    }

    fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    /// A fresh request id: a random UUID v4, or a UUID-shaped counter (the monolith's format).
    fn next_request_id(&self) -> String {
        if self.inner.options.vary {
            uuid::Uuid::new_v4().to_string()
        } else {
            let n = self.inner.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
            format!("00000000-0000-4000-8000-{n:012x}")
        }
    }
}

/// The misc service as an axum router: the `/misc` routes inside the middleware stack.
/// Tests drive it with `tower::ServiceExt::oneshot`.
pub fn app(options: Options) -> Router {
    live_app(options, None)
}

/// The misc service answering from `catalogue` (default: a fresh seed), which an order
/// consumer ([`crate::worker::orders`]) keeps in step with the monolith.
pub fn live_app(options: Options, catalogue: Option<Catalogue>) -> Router {
    let service = Service::new(options, catalogue);
    let routes = routes()
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(service.clone());
    middleware::wrap(routes, service)
}

/// Serve on a bound listener until `shutdown` resolves (graceful), with default [`Options`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, Options::default(), shutdown).await
}

/// Serve on a bound listener with these [`Options`] until `shutdown` resolves, then finish
/// the requests in flight (graceful shutdown).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_live(listener, options, None, shutdown).await
}

/// [`serve_with`], answering the feeds and the export from `catalogue` (see [`live_app`]).
pub async fn serve_live(
    listener: tokio::net::TcpListener,
    options: Options,
    catalogue: Option<Catalogue>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, live_app(options, catalogue))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The `/misc` routes; `get` also answers HEAD, as the monolith's routes do.
fn routes() -> Router<Service> {
    Router::new()
        .route(
            "/misc/thumbnail",
            get(thumbnail::from_catalogue)
                .post(thumbnail::from_body)
                .layer(DefaultBodyLimit::max(thumbnail::MAX_IMAGE_BYTES)),
        )
        .route("/misc/currency", get(currency::convert))
        .route("/misc/health", get(health::health))
        .route("/misc/feed.rss", get(feeds::rss))
        .route("/misc/feed.atom", get(feeds::atom))
        .route("/misc/export.csv", get(export::csv))
        .route("/misc/download", get(download::download))
        .route("/misc/ws", get(ws::chat))
        .route("/misc/redirect", get(redirect))
}

/// `GET /misc/redirect` → 302 to `/misc/health`, with no body.
async fn redirect() -> (StatusCode, [(HeaderName, &'static str); 1]) {
    (StatusCode::FOUND, [(LOCATION, "/misc/health")])
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::test_support::{get, router};

    #[tokio::test]
    async fn redirect_is_a_plain_302() {
        let reply = get(&router(), "/misc/redirect").await;
        assert_eq!(reply.status, StatusCode::FOUND);
        assert_eq!(reply.header("location"), "/misc/health");
        assert!(reply.body.is_empty());
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_are_json() {
        let app = router();
        let missing = get(&app, "/misc/nope").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(
            missing.text(),
            r#"{"error":"no page at /misc/nope","code":"not_found"}"#
        );
        let req = axum::http::Request::post("/misc/health")
            .body(axum::body::Body::empty())
            .unwrap();
        let refused = super::test_support::call(&app, req).await;
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.json()["code"], "method_not_allowed");
        assert!(refused.header("allow").contains("GET"));
    }
}
