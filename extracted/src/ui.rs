//! The UI front: the shop's pages (`/`, `/products`, `/products/{sku}`, `/cart`,
//! `/cart/add`, `/cart/checkout`, `/orders/{id}`, `/upload`) as a new service that gets all
//! its data from the JSON API over HTTP — the UI/back-end split, so the pages can move off
//! the monolith independently of the API behind them.
//!
//! ## Why server-side rendering
//!
//! The front renders each page on the server, calling the API, rather than shipping a static
//! page that calls the API from the browser:
//! - the pages are server-rendered today, so clients, bookmarks, forms without JavaScript and
//!   search engines see the very same HTML, byte for byte (modulo the request id and the
//!   "rendered at" time) — the migration stays invisible to them;
//! - the proxy can shadow a page route and its HTML diff compares the two renderings, which
//!   a browser-side front would make impossible (the difference would only exist in browsers);
//! - the cart stays a server-side cart behind the same `session` cookie, with no CORS or
//!   token handling added to the API.
//!
//! The front keeps no database and no cart of its own: products and orders come from
//! `/api/products` and `/api/orders`, carts from `/api/carts` (see `backend` for the exact
//! calls). In the demo the API URL is the proxy's own address, so those calls follow the API
//! routes' modes: the UI moves independently of the back-end.
//!
//! ## Modules
//!
//! | module       | its job |
//! |--------------|---------|
//! | `catalog`    | home, the product list with search, one product |
//! | `cart`       | the cart, adding to it, checkout, and order pages |
//! | `upload`     | the upload form (the upload itself stays `POST /images`) |
//! | `layout`     | the page layout, escaping and money: the monolith's templates |
//! | `backend`    | the HTTP client for the JSON API |
//! | `problem`    | `PageProblem`: the one place a failure becomes an HTML error page |
//! | `recent`     | orders placed here lately, so the page after a checkout waits out the event lag |
//! | `middleware` | request ids and `Server`, gzip, ETag/304 — the monolith's cross-cutting behaviour |

mod backend;
mod cart;
mod catalog;
mod layout;
mod middleware;
mod problem;
mod recent;
mod upload;

#[cfg(test)]
mod contract;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::{get, post};

use crate::misc::clock::Clock;
use backend::Backend;
use middleware::RequestId;

/// Knobs for the binary, tests and the demo.
#[derive(Debug, Clone)]
pub struct Options {
    /// The JSON API's base URL, e.g. `http://127.0.0.1:8080` (the proxy, in the demo).
    pub api_url: String,
    /// `true` (default): "rendered at" is now and request ids are random, like the monolith in
    /// production. `false`: a stopped clock (2026-01-01T00:00:00Z) and counter-based request
    /// ids, matching legacy-shim's `vary = false`, so both answer byte for byte the same.
    pub vary: bool,
}

impl Options {
    /// Varying options for the API at `api_url`.
    pub fn new(api_url: impl Into<String>) -> Options {
        Options {
            api_url: api_url.into(),
            vary: true,
        }
    }
}

/// Why the front cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `api_url` is not an http(s) URL, or the HTTP client could not be built.
    #[error("UI front: {0}")]
    Api(String),
    /// The listener failed while serving.
    #[error("UI front: serving HTTP failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The front's state: the API client, the clock, request ids. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Front {
    inner: Arc<FrontInner>,
}

struct FrontInner {
    /// Where the data comes from.
    backend: Backend,
    /// "Rendered at", real or stopped.
    clock: Clock,
    /// Whether request ids are random.
    vary: bool,
    /// Source of deterministic request ids when `vary` is false.
    request_seq: AtomicU64,
    /// Orders placed here lately, whose page may come before the API knows them.
    recent: recent::Recent,
}

impl Front {
    fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn recent(&self) -> &recent::Recent {
        &self.inner.recent
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

/// The UI front as an axum router: the page routes inside the middleware stack. Tests drive
/// it with `tower::ServiceExt::oneshot`.
pub fn app(options: &Options) -> Result<Router, Error> {
    let front = Front {
        inner: Arc::new(FrontInner {
            backend: Backend::new(&options.api_url).map_err(Error::Api)?,
            clock: Clock::new(options.vary),
            vary: options.vary,
            request_seq: AtomicU64::new(0),
            recent: recent::Recent::default(),
        }),
    };
    let routes = Router::new()
        .route("/", get(catalog::home))
        .route("/products", get(catalog::products))
        .route("/products/{sku}", get(catalog::product))
        .route("/cart", get(cart::show))
        .route("/cart/add", post(cart::add))
        .route("/cart/checkout", post(cart::checkout))
        .route("/orders/{id}", get(cart::order))
        .route("/upload", get(upload::form))
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(front.clone());
    Ok(middleware::wrap(routes, front))
}

/// Serve on a bound listener until `shutdown` resolves, then finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    axum::serve(listener, app(&options)?)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
