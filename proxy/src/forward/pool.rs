//! Keep-alive connections to one upstream, kept for the data path.
//!
//! hyper-util's pool served every upstream through one map keyed by scheme and authority
//! (SipHash per checkout and per return) and spawned a task per request to wait for the
//! connection to be free again: about 4 k of the 57 k instructions of a proxied request
//! (bench/hotspots.md). Here each upstream owns its pool, a LIFO stack behind a mutex that
//! is held for a push or a pop. A connection goes back when its response body has been read
//! to the end ([`PooledBody`]); one whose body was abandoned, or that was upgraded, is closed.
//!
//! A request is sent once. If the pooled connection it was given turns out to be closed
//! before the request was written, it is given another connection (hyper hands the request
//! back unsent); nothing written is ever sent again.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use tower::Service;

use super::ProxyBody;
use super::connect::{ConnectError, RetryConnector};

/// Idle connections kept per upstream at most; more are closed when they come back.
const MAX_IDLE: usize = 1024;

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (after the connector's retries).
    Connect(ConnectError),
    /// The connection failed while the request was sent or its answer read.
    Http(hyper::Error),
}

/// The connections to one upstream.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
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
    sender: SendRequest<ProxyBody>,
    since: Instant,
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
        mut request: Request<ProxyBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut sender, pooled) = match self.shared.checkout() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            if pooled && sender.ready().await.is_err() {
                // Closed while idle; nothing was sent on it.
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.lease(response, sender)),
                Err(mut refused) => match refused.take_message() {
                    // Not written: the connection closed as it was taken. Try another.
                    Some(unsent) if pooled => request = unsent,
                    _ => return Err(SendError::Http(refused.into_error())),
                },
            }
        }
    }

    /// Opens a connection and starts the task that drives it.
    async fn connect(&self) -> Result<SendRequest<ProxyBody>, SendError> {
        self.start_reaper();
        let io = self
            .shared
            .connector
            .clone()
            .call(self.shared.address.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(SendError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// The response with its body tied to the connection, which goes back to the pool when
    /// the body has been read (at once when there is none). An upgraded connection never does.
    fn lease(
        &self,
        response: Response<Incoming>,
        sender: SendRequest<ProxyBody>,
    ) -> Response<PooledBody> {
        let reusable = response.status() != StatusCode::SWITCHING_PROTOCOLS;
        let mut lease = Some(Lease {
            sender,
            pool: Arc::downgrade(&self.shared),
            reusable,
        });
        if response.body().is_end_stream() {
            if let Some(lease) = lease.take() {
                lease.release();
            }
        }
        response.map(|body| PooledBody { body, lease })
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
    fn checkout(&self) -> Option<SendRequest<ProxyBody>> {
        let mut idle = lock(&self.idle);
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < self.idle_timeout {
                return Some(entry.sender);
            }
        }
        None
    }

    fn give_back(&self, sender: SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let entry = Idle {
            sender,
            since: Instant::now(),
        };
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(entry);
        }
    }

    /// Closes idle connections past the timeout or already closed (dropped after the lock).
    fn reap(&self) {
        let expired: Vec<Idle> = {
            let mut idle = lock(&self.idle);
            let (keep, expired) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|e| !e.sender.is_closed() && e.since.elapsed() < self.idle_timeout);
            *idle = keep;
            expired
        };
        drop(expired);
    }
}

fn lock(idle: &Mutex<Vec<Idle>>) -> std::sync::MutexGuard<'_, Vec<Idle>> {
    // A push or a pop at a time: the stack is consistent even after a panic elsewhere.
    idle.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection out of the pool, with its way back.
#[derive(Debug)]
struct Lease {
    sender: SendRequest<ProxyBody>,
    pool: Weak<Shared>,
    /// False for an upgraded connection: it is no longer HTTP.
    reusable: bool,
}

impl Lease {
    fn release(self) {
        if let (true, Some(pool)) = (self.reusable, self.pool.upgrade()) {
            pool.give_back(self.sender);
        }
    }
}

pin_project_lite::pin_project! {
    /// An upstream's response body. Read to its end, it returns its connection to the pool;
    /// dropped before, it closes the connection (what is left of the answer is unread).
    #[derive(Debug)]
    pub struct PooledBody {
        #[pin]
        body: Incoming,
        lease: Option<Lease>,
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.body.as_mut().poll_frame(cx));
        let ended = match &frame {
            None => true,
            Some(Ok(_)) => this.body.is_end_stream(),
            Some(Err(_)) => {
                // The connection broke off: it is not returned.
                this.lease.take();
                false
            }
        };
        if ended {
            if let Some(lease) = this.lease.take() {
                lease.release();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;
    use crate::forward::BoxError;

    /// An HTTP/1.1 server on a loopback port answering `hello` (or closing after each
    /// answer when `close` is set); counts the connections it accepted.
    async fn upstream(close: bool) -> (Uri, Arc<AtomicUsize>) {
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
                tokio::spawn(async move {
                    let service = service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"hello"),
                        )))
                    });
                    let _ = server::Builder::new()
                        .keep_alive(!close)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}/").parse().unwrap(), accepted)
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
