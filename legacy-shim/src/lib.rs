//! # legacy-shim — an example legacy monolith
//!
//! A small shop in one process: server-rendered HTML pages, a JSON API, file uploads, and a
//! drawer of "misc" endpoints (thumbnails, currency conversion, feeds, exports, a WebSocket
//! chat). It is the backend that `strangler` stands in front of in the demo, and the target of
//! whole-system tests that compare answers "direct vs through the proxy". So it behaves like a
//! real monolith (cookies, ETags, gzip, redirects, streaming bodies) and, when asked
//! (`Options::vary == false`), answers byte-for-byte the same on every run.
//!
//! ## Modules
//!
//! | module       | its job |
//! |--------------|---------|
//! | `store`      | the SQLite database: schema, seed data, every query (one connection behind a mutex) |
//! | `allocation` | the batch-allocation domain rules (in-stock first, earliest eta, deallocation) |
//! | `clock`      | what varies between runs: timestamps, uptime, generated ids |
//! | `pages`      | server-rendered HTML: catalog, cart and checkout, orders, the upload form |
//! | `images`     | image upload (`POST /images`) and serving (`GET /images/{id}`), decoding helpers |
//! | `api`        | the JSON API under `/api`: products, orders, batches, allocation, imports, CORS |
//! | `misc`       | `/misc`: thumbnail, currency, health, feeds, CSV export, download, WebSocket, redirect |
//! | `middleware` | request ids and `Server`, latency and error injection, ETag/304, gzip |
//! | `error`      | [`Error`] for start-up, and `Problem`: the one place a failure becomes an answer |
//!
//! ## How a request flows
//!
//! hyper → `middleware::identity` (request id, `Server`) → trace span → `middleware::faults`
//! (latency, then injected 500s) → gzip (`middleware::compression`) → `middleware::conditional`
//! (ETag, `If-None-Match` → 304) → the route's handler → `store`.
//!
//! Errors under `/api`, `/misc` and `/images` are JSON (`{"error": …, "code": …}`); everywhere
//! else they are HTML pages.

mod allocation;
mod api;
mod clock;
mod error;
mod images;
mod middleware;
mod misc;
mod pages;
mod store;
#[cfg(test)]
mod test_support;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;

pub use error::Error;

use clock::Clock;
use store::Store;

/// Knobs for tests and the demo.
#[derive(Debug, Clone)]
pub struct Options {
    /// Added to every response, to make the monolith feel slow (default 0).
    pub latency: Duration,
    /// Share of requests answered 500, from 0.0 (never, the default) to 1.0 (always);
    /// `/misc/health` is never failed, so health checks keep working.
    pub error_rate: f64,
    /// `true` (default): timestamps are "now" and generated ids are random. `false`: fixed
    /// timestamps (2026-01-01T00:00:00Z) and counter-based ids, so two identical runs give
    /// byte-identical responses.
    pub vary: bool,
    /// `None`: a fresh in-memory SQLite database. `Some(path)`: that file, created if missing,
    /// with the schema and seed data applied when it is empty.
    pub db_path: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            latency: Duration::ZERO,
            error_rate: 0.0,
            vary: true,
            db_path: None,
        }
    }
}

/// The shop's state: its database, clock and knobs. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Shop {
    inner: Arc<ShopInner>,
}

struct ShopInner {
    /// The knobs this shop was started with.
    opts: Options,
    /// Timestamps and ids, fixed or varying per `opts.vary`.
    clock: Clock,
    /// Products, orders, carts, batches and images.
    store: Store,
    /// Source of deterministic request ids when `opts.vary` is false.
    request_seq: AtomicU64,
}

impl Shop {
    /// Open (or create) the database, apply the schema, seed it if empty, and generate the
    /// seed images.
    pub fn new(opts: Options) -> Result<Shop, Error> {
        let clock = Clock::new(opts.vary);
        let store = Store::open(opts.db_path.as_deref(), clock.clone())?;
        Ok(Shop {
            inner: Arc::new(ShopInner {
                opts,
                clock,
                store,
                request_seq: AtomicU64::new(0),
            }),
        })
    }

    fn opts(&self) -> &Options {
        &self.inner.opts
    }

    fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// A fresh request id: a random UUID v4, or a deterministic UUID-shaped counter.
    fn next_request_id(&self) -> String {
        if self.inner.opts.vary {
            uuid::Uuid::new_v4().to_string()
        } else {
            let n = self.inner.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
            format!("00000000-0000-4000-8000-{n:012x}")
        }
    }
}

/// The whole shop as an axum router: pages, images, `/api`, `/misc` and the middleware stack.
/// Tests drive it with `tower::ServiceExt::oneshot`.
pub fn app(shop: Shop) -> Router {
    let routes = Router::new()
        .merge(pages::routes())
        .merge(images::routes())
        .merge(api::routes())
        .merge(misc::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(shop.clone());
    middleware::wrap(routes, shop)
}

/// Serve on an already-bound listener until `shutdown` resolves, then finish the requests in
/// flight (graceful shutdown).
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let shop = Shop::new(opts)?;
    axum::serve(listener, app(shop))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use futures_util::{SinkExt, StreamExt};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;
    use crate::test_support::{call, json_request, png, stable_shop};

    #[test]
    fn default_options_vary_and_never_fail() {
        let opts = Options::default();
        assert!(opts.vary);
        assert_eq!(
            (opts.latency, opts.error_rate, opts.db_path),
            (Duration::ZERO, 0.0, None)
        );
    }

    /// The same script of requests against two fresh stable shops.
    async fn script_run() -> Vec<(u16, Vec<(String, String)>, Vec<u8>)> {
        let app = app(stable_shop());
        let thumbnail = || {
            Request::post("/misc/thumbnail?w=10&h=10")
                .header("content-type", "image/png")
                .body(Body::from(png(40, 30)))
                .unwrap()
        };
        let requests = vec![
            Request::get("/").body(Body::empty()).unwrap(),
            Request::get("/cart").body(Body::empty()).unwrap(),
            json_request(
                "POST",
                "/api/orders",
                json!({"sku": "RED-CHAIR", "quantity": 1}),
            ),
            Request::get("/api/orders").body(Body::empty()).unwrap(),
            json_request(
                "POST",
                "/api/allocate",
                json!({"orderid": "o1", "sku": "RED-CHAIR", "qty": 1}),
            ),
            Request::get("/misc/health").body(Body::empty()).unwrap(),
            Request::get("/misc/feed.atom").body(Body::empty()).unwrap(),
            Request::get("/misc/export.csv")
                .body(Body::empty())
                .unwrap(),
            Request::get("/misc/currency?from=GBP&to=JPY&amount=3.21")
                .body(Body::empty())
                .unwrap(),
            thumbnail(),
            Request::post("/images")
                .header("content-type", "image/png")
                .body(Body::from(png(3, 3)))
                .unwrap(),
        ];
        let mut out = Vec::new();
        for req in requests {
            let reply = call(&app, req).await;
            let mut headers: Vec<(String, String)> = reply
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            headers.sort();
            out.push((reply.status.as_u16(), headers, reply.body.to_vec()));
        }
        out
    }

    #[tokio::test]
    async fn stable_shops_answer_byte_for_byte_the_same() {
        let (first, second) = (script_run().await, script_run().await);
        assert_eq!(first.len(), second.len());
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(a, b);
        }
        // And the same request twice in one run gives identical bodies.
        let app = app(stable_shop());
        let one = call(&app, Request::get("/products").body(Body::empty()).unwrap()).await;
        let two = call(&app, Request::get("/products").body(Body::empty()).unwrap()).await;
        assert_eq!(one.body, two.body);
        assert_eq!(one.header("etag"), two.header("etag"));
    }

    async fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec())
                    .unwrap()
                    .to_ascii_lowercase();
                return (head, buf[end + 4..].to_vec());
            }
        }
    }

    #[tokio::test]
    async fn serve_speaks_http_and_shuts_down_gracefully() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let opts = Options {
            vary: false,
            ..Options::default()
        };
        let server = tokio::spawn(serve(listener, opts, async {
            let _ = stopped.await;
        }));

        // A plain request.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /misc/health HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = String::new();
        client.read_to_string(&mut raw).await.unwrap();
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
        assert!(
            raw.contains("server: legacy-shim/0.1") && raw.contains("date: "),
            "{raw}"
        );

        // Streamed CSV goes out chunked.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /misc/export.csv?rows=3000 HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n").await.unwrap();
        let (head, _) = read_head(&mut client).await;
        assert!(head.contains("transfer-encoding: chunked"), "{head}");

        // A large download is in flight when shutdown is asked for: it still completes.
        let size: usize = 20 * 1024 * 1024;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /misc/download?bytes={size} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let (head, mut body) = read_head(&mut client).await;
        assert!(
            head.starts_with("http/1.1 200 ok")
                && head.contains(&format!("content-length: {size}")),
            "{head}"
        );
        stop.send(()).unwrap();
        client.read_to_end(&mut body).await.unwrap();
        assert_eq!(body.len(), size);
        assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

        let finished = tokio::time::timeout(Duration::from_secs(30), server).await;
        assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn websocket_chat_echoes_text_and_binary() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Options::default(), async {
            let _ = stopped.await;
        }));
        let (mut socket, response) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/misc/ws"))
                .await
                .unwrap();
        assert_eq!(response.status(), 101);
        socket.send(Message::text("hello, support")).await.unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::text("hello, support")
        );
        socket
            .send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::binary(vec![0u8, 1, 2, 255])
        );
        socket.close(None).await.unwrap();
        while let Some(Ok(_)) = socket.next().await {}
        stop.send(()).unwrap();
        let finished = tokio::time::timeout(Duration::from_secs(30), server).await;
        assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
    }
}
