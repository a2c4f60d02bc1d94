//! Keep-alive connections to one upstream, kept for the data path.
//!
//! hyper-util's pool served every upstream through one map keyed by scheme and authority
//! (SipHash per checkout and per return) and spawned a task per request to wait for the
//! connection to be free again: about 4 k of the 57 k instructions of a proxied request
//! (bench/hotspots.md). Here each upstream owns its pool, a LIFO stack behind a mutex that
//! is held for a push or a pop. A connection goes back when its response body has been read
//! to the end ([`PooledBody`]); one whose body was abandoned, or that was upgraded, is closed.
//!
//! A request is sent once, on a connection checked to be open when it is taken: nothing
//! written is ever sent again.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::{Request, Response, Uri};
use tower::Service;

use super::ProxyBody;
use super::conn::{Connection, Exchange, PooledBody, UpstreamError};
use super::connect::{ConnectError, RetryConnector};

/// Idle connections kept per upstream at most; more are closed when they come back.
const MAX_IDLE: usize = 1024;

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (after the connector's retries).
    Connect(ConnectError),
    /// The connection failed while the request was sent or its answer read.
    Upstream(UpstreamError),
}

/// The connections to one upstream.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

/// What a pool's connections share: the idle stack and how to open more.
#[derive(Debug)]
pub struct Shared {
    /// Free connections, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    connector: RetryConnector,
    /// The upstream's `http://authority/`, for the connector.
    address: Uri,
    /// An idle connection older than this is closed.
    idle_timeout: Duration,
    /// Set once the task closing expired idle connections runs.
    reaper: OnceLock<()>,
}

#[derive(Debug)]
struct Idle {
    conn: Connection,
    since: Instant,
}

impl Idle {
    /// Whether the connection may carry a request: idle for less than `timeout`, and still
    /// open with nothing unasked-for from the upstream.
    fn is_fresh(&mut self, timeout: Duration) -> bool {
        self.since.elapsed() < timeout && self.conn.is_usable()
    }
}

impl Pool {
    /// A pool of connections to `address` (`http://host:port/`), opened by `connector`.
    pub fn new(connector: RetryConnector, address: Uri, idle_timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                idle: Mutex::new(Vec::new()),
                connector,
                address,
                idle_timeout,
                reaper: OnceLock::new(),
            }),
        }
    }

    /// Sends `request` (its URI already in origin form) on a free connection, or a new one,
    /// and returns the response head.
    pub async fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let conn = match self.shared.checkout() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        Exchange::new(conn, request, Arc::downgrade(&self.shared))
            .await
            .map_err(SendError::Upstream)
    }

    /// Opens a connection.
    async fn connect(&self) -> Result<Connection, SendError> {
        self.start_reaper();
        let io = self
            .shared
            .connector
            .clone()
            .call(self.shared.address.clone())
            .await
            .map_err(SendError::Connect)?;
        Ok(Connection::new(io.into_inner()))
    }

    /// Starts (once, from within the runtime) the task that closes connections idle longer
    /// than the idle timeout, so an upstream is not held open by a quiet proxy.
    fn start_reaper(&self) {
        self.shared.reaper.get_or_init(|| {
            let shared = Arc::downgrade(&self.shared);
            let every = (self.shared.idle_timeout / 2).max(Duration::from_millis(100));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    shared.reap();
                }
            });
        });
    }

    /// How many connections wait idle (for tests).
    #[cfg(test)]
    fn idle(&self) -> usize {
        lock(&self.shared.idle).len()
    }
}

impl Shared {
    /// The most recently used idle connection that is still open and fresh.
    fn checkout(&self) -> Option<Connection> {
        let mut idle = lock(&self.idle);
        while let Some(mut entry) = idle.pop() {
            if entry.is_fresh(self.idle_timeout) {
                return Some(entry.conn);
            }
        }
        None
    }

    /// Takes back a connection whose exchange ended cleanly.
    pub fn give_back(&self, conn: Connection) {
        let entry = Idle {
            conn,
            since: Instant::now(),
        };
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(entry);
        }
    }

    /// Closes idle connections past the timeout or closed by the upstream (dropped after
    /// the lock).
    fn reap(&self) {
        let mut expired = Vec::new();
        {
            let mut idle = lock(&self.idle);
            let mut keep = Vec::with_capacity(idle.len());
            for mut entry in std::mem::take(&mut *idle) {
                if entry.is_fresh(self.idle_timeout) {
                    keep.push(entry);
                } else {
                    expired.push(entry);
                }
            }
            *idle = keep;
        }
        drop(expired);
    }
}

fn lock(idle: &Mutex<Vec<Idle>>) -> std::sync::MutexGuard<'_, Vec<Idle>> {
    // A push or a pop at a time: the stack is consistent even after a panic elsewhere.
    idle.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;
    use crate::forward::BoxError;

    /// A server on a loopback port handing each connection to `serve`; counts the
    /// connections it accepted.
    async fn counting_server<F, Fut>(serve: F) -> (Uri, Arc<AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        (format!("http://{addr}/").parse().unwrap(), accepted)
    }

    /// An HTTP/1.1 server on a loopback port answering `hello` (or closing after each
    /// answer when `close` is set); counts the connections it accepted.
    async fn upstream(close: bool) -> (Uri, Arc<AtomicUsize>) {
        counting_server(move |stream| async move {
            let service = service_fn(|_| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"hello",
                ))))
            });
            let _ = server::Builder::new()
                .keep_alive(!close)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        })
        .await
    }

    fn pool(address: Uri, idle_timeout: Duration) -> Pool {
        let connector = RetryConnector::new(HttpConnector::new(), 0);
        Pool::new(connector, address, idle_timeout)
    }

    fn get() -> Request<ProxyBody> {
        let empty = Full::new(Bytes::new())
            .map_err(|e| match e {})
            .boxed_unsync();
        Request::get("/").body(empty).unwrap()
    }

    async fn text(response: Response<PooledBody>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_was_read() {
        let (address, accepted) = upstream(false).await;
        let pool = pool(address, Duration::from_secs(30));
        for _ in 0..5 {
            let response = pool.send(get()).await.unwrap();
            assert_eq!(text(response).await, "hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn a_body_not_read_to_its_end_closes_its_connection() {
        let (address, accepted) = upstream(false).await;
        let pool = pool(address, Duration::from_secs(30));
        let first = pool.send(get()).await.unwrap();
        // Two requests at once: the second cannot wait for the first body's connection.
        let second = pool.send(get()).await.unwrap();
        drop(first);
        assert_eq!(text(second).await, "hello");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(pool.idle(), 1, "only the read connection came back");
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced() {
        let (address, accepted) = upstream(true).await;
        let pool = pool(address, Duration::from_secs(30));
        for _ in 0..3 {
            let response = pool.send(get()).await.unwrap();
            assert_eq!(text(response).await, "hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_connections_past_the_timeout_are_closed() {
        let (address, accepted) = upstream(false).await;
        let pool = pool(address, Duration::from_millis(200));
        let response = pool.send(get()).await.unwrap();
        assert_eq!(text(response).await, "hello");
        assert_eq!(pool.idle(), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.idle() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(pool.idle(), 0, "the reaper closed the idle connection");
        let response = pool.send(get()).await.unwrap();
        assert_eq!(text(response).await, "hello");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// hyper closes a connection whose answer came before its request body was sent, so a
    /// later request never waits behind an upload that may not end.
    #[tokio::test]
    async fn a_connection_still_sending_a_body_after_an_early_answer_is_not_handed_out() {
        let (address, accepted) = upstream(false).await;
        let pool = pool(address, Duration::from_secs(30));
        // A request body that never ends; the upstream answers without reading it.
        let endless = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, BoxError>,
        >());
        let upload = Request::post("/").body(endless.boxed_unsync()).unwrap();
        let response = pool.send(upload).await.unwrap();
        assert_eq!(text(response).await, "hello");
        let next = tokio::time::timeout(Duration::from_secs(5), pool.send(get()))
            .await
            .expect("the next request waited for the busy connection");
        assert_eq!(text(next.unwrap()).await, "hello");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// An upstream that records what it receives until the end of a chunked body, then
    /// answers `ok`.
    async fn recorder() -> (Uri, tokio::sync::oneshot::Receiver<Vec<u8>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            while !received.ends_with(b"\r\n0\r\nx-sum: 5\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "closed early: {}",
                    String::from_utf8_lossy(&received)
                );
                received.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            let _ = tx.send(received);
        });
        (format!("http://{addr}/").parse().unwrap(), rx)
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_goes_chunked_with_its_declared_trailers() {
        let (address, received) = recorder().await;
        let pool = pool(address, Duration::from_secs(30));
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sum", http::HeaderValue::from_static("5"));
        trailers.insert("x-undeclared", http::HeaderValue::from_static("no"));
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::data(Bytes::from_static(b"de"))),
            Ok(Frame::trailers(trailers)),
        ];
        let upload = Request::post("/up")
            .header("host", "upstream.example")
            .header("trailer", "x-sum")
            .body(StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync())
            .unwrap();
        let response = pool.send(upload).await.unwrap();
        assert_eq!(text(response).await, "ok");
        let received = String::from_utf8(received.await.unwrap()).unwrap();
        assert_eq!(
            received,
            "POST /up HTTP/1.1\r\nhost: upstream.example\r\ntrailer: x-sum\r\n\
             transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n"
        );
    }

    /// An upstream that answers one request per connection and then closes it without saying
    /// so (no `Connection: close`), as servers closing idle keep-alive connections do.
    async fn silent_closer() -> (Uri, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        counting_server(|mut stream| async move {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                .await;
        })
        .await
    }

    #[tokio::test]
    async fn a_connection_closed_silently_while_idle_is_not_used_again() {
        let (address, accepted) = silent_closer().await;
        let pool = pool(address, Duration::from_secs(30));
        for round in 1..=3 {
            let response = pool.send(get()).await.unwrap();
            assert_eq!(text(response).await, "hello", "round {round}");
            // The upstream's close reaches the proxy while the connection idles in the pool.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_connect_is_a_connect_error() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let pool = pool(
            format!("http://{addr}/").parse().unwrap(),
            Duration::from_secs(30),
        );
        assert!(matches!(pool.send(get()).await, Err(SendError::Connect(_))));
    }
}
