//! The back-end API service: the monolith's JSON API (products, orders, batches and
//! allocation, imports) as a new service with storage of its own.
//!
//! It answers every `/api` request exactly as legacy-shim does — status codes, headers
//! (CORS, `ETag`/304, `Vary`, `Location`), JSON field order and number formatting, error
//! answers — so the proxy's shadow diff finds the two equal. The contract tests (`contract`)
//! send the same requests to both and compare.
//!
//! ## Its data
//!
//! Embedded SQLite by default, PostgreSQL when `database` says so (`storage`), with versioned
//! migrations applied at start; seeded with the monolith's seed data. During the migration
//! the monolith still takes the writes; this service keeps in step by consuming the domain
//! events the proxy derives from that traffic (`events`, wired to the bus by `consumer`), never
//! by reading the monolith's database. Each event is applied once (by id), in the same
//! transaction as its change, so redelivery and `strangler events replay` are harmless.
//!
//! ## Modules
//!
//! | module       | its job |
//! |--------------|---------|
//! | `products`, `orders`, `batches`, `imports` | the handlers |
//! | `cors`       | preflight answers and `Access-Control-Allow-Origin` |
//! | `allocation` | the batch-allocation rules (in-stock first, earliest eta, deallocation) |
//! | `store`      | every query, written once over `storage`; the allocation projection |
//! | `storage`    | SQLite or PostgreSQL behind one small SQL interface; migrations |
//! | `events`     | applying the monolith's events to the store, idempotently |
//! | `consumer`   | the loop that takes events off the proxy's bus and applies them |
//! | `middleware` | request ids and `Server`, gzip, ETag/304 |
//! | `error`      | [`Error`] for start-up, and `Problem`: the one place a failure becomes an answer |
//!
//! ## Beyond the monolith
//!
//! `GET /api/orders/{id}/allocations` shows the allocation projection of an order: which
//! batch each of its lines is allocated to by the monolith's allocation rules.

mod allocation;
mod batches;
mod consumer;
mod cors;
mod error;
mod events;
mod imports;
mod middleware;
mod orders;
mod products;
mod storage;
mod store;

#[cfg(test)]
mod contract;
#[cfg(test)]
mod test_support;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::{get, post};

pub use consumer::CONSUMER_NAME;
pub use error::Error;
pub use events::EVENT_TYPES;
pub use storage::{Database, DbError};

use crate::misc::clock::Clock;
use crate::monolith::Monolith;
use store::Store;

/// Knobs for the binary, tests and the demo.
#[derive(Debug, Clone)]
pub struct Options {
    /// `true` (default): timestamps are "now" and order ids random, like the monolith in
    /// production. `false`: fixed timestamps (2026-01-01T00:00:00Z) and counter-based ids,
    /// matching legacy-shim's `vary = false`, so both answer byte for byte the same.
    pub vary: bool,
    /// Where the data lives (default: a fresh in-memory SQLite database).
    pub database: Database,
    /// Keep in step with the monolith from the proxy's bus; `None` (default): no consumer.
    pub events: Option<EventSource>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vary: true,
            database: Database::default(),
            events: None,
        }
    }
}

/// Where the service reads the monolith's events from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    /// A strangler routes.toml whose `[bus]` the proxy publishes to.
    pub config: PathBuf,
    /// The durable consumer name (its position on the bus); default [`CONSUMER_NAME`].
    pub consumer: String,
    /// The monolith's base URL (e.g. `http://127.0.0.1:8081`), reached directly: an event that
    /// names an order by its id only (the page checkout's) is completed from its
    /// `GET /api/orders/{id}` ([`crate::monolith`]).
    pub legacy_url: String,
}

/// The service's state: knobs, clock and store. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub(crate) struct Api {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    /// Whether timestamps and ids vary (`Options::vary`).
    vary: bool,
    /// Timestamps and ids, fixed or varying per `vary`.
    clock: Clock,
    /// The service's own data.
    store: Store,
    /// Source of deterministic request ids when `Options::vary` is false.
    request_seq: AtomicU64,
}

impl Api {
    /// Open the storage (migrate, seed when empty).
    pub(crate) async fn open(options: &Options) -> Result<Api, Error> {
        let clock = Clock::new(options.vary);
        let store = Store::open(&options.database, clock.clone()).await?;
        Ok(Api {
            inner: Arc::new(ApiInner {
                vary: options.vary,
                clock,
                store,
                request_seq: AtomicU64::new(0),
            }),
        })
    }

    fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// A fresh request id: a random UUID v4, or a UUID-shaped counter (the monolith's format).
    fn next_request_id(&self) -> String {
        if self.inner.vary {
            uuid::Uuid::new_v4().to_string()
        } else {
            let n = self.inner.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
            format!("00000000-0000-4000-8000-{n:012x}")
        }
    }
}

/// The API service as an axum router over already-opened state.
pub(crate) fn router(api: Api) -> Router {
    let routes = routes()
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(api.clone());
    middleware::wrap(routes, api)
}

/// Open the storage and build the service's router (no event consumer).
/// Tests drive it with `tower::ServiceExt::oneshot`.
pub async fn app(options: Options) -> Result<Router, Error> {
    Ok(router(Api::open(&options).await?))
}

/// Serve on a bound listener until `shutdown` resolves (graceful), with default [`Options`]:
/// an in-memory SQLite database and no event consumer.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with(listener, Options::default(), shutdown).await
}

/// Serve on a bound listener with these [`Options`] until `shutdown` resolves, then finish
/// the requests in flight and stop the event consumer (if any) between two events.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let api = Api::open(&options).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = match &options.events {
        Some(source) => {
            let monolith = Monolith::new(&source.legacy_url).map_err(Error::Monolith)?;
            let subscription = consumer::subscribe(source).await?;
            Some(tokio::spawn(consumer::run(
                api.clone(),
                monolith,
                subscription,
                stopped,
            )))
        }
        None => None,
    };
    let served = axum::serve(listener, router(api))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    if let Some(task) = consumer {
        if let Err(err) = task.await {
            tracing::error!(error = %err, "the event consumer task failed");
        }
    }
    Ok(served?)
}

/// The `/api` routes; every one also answers `OPTIONS` (CORS preflight). The same routes,
/// methods and order as the monolith, so `Allow` on a 405 matches too.
fn routes() -> Router<Api> {
    let preflight = cors::preflight;
    let api = Router::new()
        .route("/api/products", get(products::list).options(preflight))
        .route(
            "/api/products/{sku}",
            get(products::show).put(products::update).options(preflight),
        )
        .route(
            "/api/orders",
            get(orders::list).post(orders::create).options(preflight),
        )
        .route(
            "/api/orders/{id}",
            get(orders::show).delete(orders::delete).options(preflight),
        )
        .route(
            "/api/orders/{id}/allocations",
            get(orders::allocations).options(preflight),
        )
        .route(
            "/api/batches",
            get(batches::list).post(batches::create).options(preflight),
        )
        .route(
            "/api/batches/{reference}",
            get(batches::show)
                .patch(batches::change_quantity)
                .options(preflight),
        )
        .route("/api/allocate", post(batches::allocate).options(preflight))
        .route("/api/imports", post(imports::import).options(preflight));
    api.layer(axum::middleware::from_fn(cors::allow_origin))
}
