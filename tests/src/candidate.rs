//! Stand-ins for an extracted service in shadow tests: well-behaved HTTP servers that record
//! every request whole (head and body), so a test can say exactly what a mirrored copy carried.
//!
//! - [`Recorder`]: answers every request with a fixed [`Answer`], at once or only once the test
//!   opens its gate ([`Recorder::gated`]), so a test decides when the candidate answers.
//! - [`PriceBug`]: a candidate that relays to a real legacy-shim and gets one thing wrong (one
//!   product's `price_cents` is a cent too high), the shape of a real migration bug.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The mark the proxy puts on every mirrored copy.
pub const SHADOW_MARK: &str = "x-strangler-shadow";

// === Recorded ===

/// One request as a candidate received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub target: String,
    /// Every header field.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Recorded {
    /// The first value of `name`, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the proxy marked this request as a mirrored copy (`x-strangler-shadow: 1`).
    pub fn is_shadow_copy(&self) -> bool {
        self.header(SHADOW_MARK) == Some("1")
    }
}

// === Answer ===

/// What a [`Recorder`] answers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// An answer with `content-type: application/json` and `body`.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
        }
    }

    /// An answer with `content-type: text/plain` and `body`.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Bytes::from(body.to_owned()),
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn response(&self) -> Response<Full<Bytes>> {
        let mut builder = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(self.body.clone()))
            .expect("a test's answer is a valid response")
    }
}

// === Recorder ===

/// A candidate that records every request and answers with one fixed [`Answer`]; it stops
/// (with its connections) when dropped.
pub struct Recorder {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests received whole, in order.
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Answers sent (counted as each answer leaves).
    answered: Arc<AtomicUsize>,
    /// `true` once answers may leave.
    gate: watch::Sender<bool>,
    /// The accept loop; it owns the connection tasks.
    task: JoinHandle<()>,
}

impl Recorder {
    /// Starts a recorder that answers every request with `answer` as soon as it has read it.
    pub async fn start(answer: Answer) -> Self {
        Self::spawn(answer, true).await
    }

    /// Starts a recorder that reads and records every request, but holds every answer until
    /// [`Recorder::open`] is called.
    pub async fn gated(answer: Answer) -> Self {
        Self::spawn(answer, false).await
    }

    async fn spawn(answer: Answer, open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recording candidate");
        let addr = listener.local_addr().expect("recording candidate address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(AtomicUsize::new(0));
        let (gate, _) = watch::channel(open);
        let state = RecorderState {
            answer: Arc::new(answer),
            requests: requests.clone(),
            answered: answered.clone(),
            gate: gate.clone(),
        };
        let task = tokio::spawn(accept_loop(listener, state));
        Self {
            addr,
            requests,
            answered,
            gate,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets every held answer (and every later one) go.
    pub fn open(&self) {
        self.gate.send_replace(true);
    }

    /// Requests received so far (each recorded once its body was read whole).
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// How many answers have left so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct RecorderState {
    answer: Arc<Answer>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    answered: Arc<AtomicUsize>,
    gate: watch::Sender<bool>,
}

async fn accept_loop(listener: TcpListener, state: RecorderState) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let state = state.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    if let Ok(mut requests) = state.requests.lock() {
                        requests.push(Recorded {
                            method: parts.method,
                            target: parts
                                .uri
                                .path_and_query()
                                .map_or("/", |pq| pq.as_str())
                                .to_owned(),
                            headers: parts.headers,
                            body,
                        });
                    }
                    let mut gate = state.gate.subscribe();
                    // The sender lives as long as the recorder; if it is gone, answer anyway.
                    let _ = gate.wait_for(|open| *open).await;
                    state.answered.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(state.answer.response())
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// === PriceBug ===

/// A candidate that relays every request to a legacy-shim and passes its answer back, except
/// that `GET /api/products/{sku}` of one product answers `price_cents` one cent too high.
pub struct PriceBug {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests relayed so far.
    hits: Arc<AtomicUsize>,
    /// Once set, every request is answered 500 (a candidate that starts failing).
    failing: Arc<std::sync::atomic::AtomicBool>,
    /// The accept loop; it owns the connection tasks.
    task: JoinHandle<()>,
}

impl PriceBug {
    /// Starts a candidate relaying to `legacy_url`, wrong about the price of `sku`.
    pub async fn start(legacy_url: &str, sku: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind buggy candidate");
        let addr = listener.local_addr().expect("buggy candidate address");
        let hits = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let relay = Relay {
            client: crate::raw_client(),
            upstream: Arc::from(legacy_url),
            buggy_path: Arc::from(format!("/api/products/{sku}")),
            hits: hits.clone(),
            failing: failing.clone(),
        };
        let task = tokio::spawn(relay_loop(listener, relay));
        Self {
            addr,
            hits,
            failing,
            task,
        }
    }

    /// From now on, answers every request with 500.
    pub fn start_failing(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests relayed so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for PriceBug {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Relay {
    client: reqwest::Client,
    upstream: Arc<str>,
    buggy_path: Arc<str>,
    hits: Arc<AtomicUsize>,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

/// Header fields that describe one connection or one message's framing: never relayed.
const NOT_RELAYED: [&str; 5] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
];

impl Relay {
    async fn relay(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "the candidate broke");
        }
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut headers = parts.headers.clone();
        for name in NOT_RELAYED {
            headers.remove(name);
        }
        let sent = self
            .client
            .request(parts.method.clone(), format!("{}{target}", self.upstream))
            .headers(headers)
            .body(body)
            .send()
            .await;
        let Ok(answer) = sent else {
            return plain(StatusCode::BAD_GATEWAY, "legacy-shim did not answer");
        };
        let status = answer.status();
        let mut headers = answer.headers().clone();
        for name in NOT_RELAYED {
            headers.remove(name);
        }
        let Ok(mut body) = answer.bytes().await else {
            return plain(StatusCode::BAD_GATEWAY, "legacy-shim's body broke off");
        };
        if parts.method == Method::GET
            && parts.uri.path() == &*self.buggy_path
            && status.is_success()
        {
            if let Ok(mut product) = serde_json::from_slice::<serde_json::Value>(&body) {
                if let Some(price) = product["price_cents"].as_i64() {
                    product["price_cents"] = (price + 1).into();
                    body = Bytes::from(product.to_string());
                }
            }
        }
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn relay_loop(listener: TcpListener, relay: Relay) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let relay = relay.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let relay = relay.clone();
                async move { Ok::<_, Infallible>(relay.relay(request).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
