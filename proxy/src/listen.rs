//! The client-facing listener: accept, TLS, per-connection limits, graceful drain.
//!
//! HTTP/1.1 and HTTP/2 are served on one port (h2c by prior knowledge; with TLS, by ALPN).
//! Open connections are capped by a semaphore around `accept`: at the cap, new clients wait
//! in the kernel's backlog instead of being accepted and starved. On shutdown the listener
//! stops accepting, asks every connection to finish its in-flight requests, and drops what
//! is left after the grace period.
//!
//! Before a request reaches the handler, [`guard`] refuses what must never be forwarded and
//! [`scan`] (over the raw bytes) what hyper's parsed request cannot show; see README.md
//! "Limits and hardening". Every connection runs two timers of its own: a request head must
//! arrive within `header_read_timeout` of its first byte, and a connection with nothing in
//! flight is closed after `idle_timeout`. A connection whose client cancels most of its
//! requests before their answer (HTTP/2 rapid reset) is closed past `h2_max_cancelled_streams`.

mod body;
mod guard;
mod scan;
mod tls;
mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ListenConfig;
use crate::forward::ProxyBody;

pub use body::{BodyTimeout, ClientBody};
pub use guard::Refusal;
pub use scan::MAX_HEADERS;
pub use tls::{TlsError, load_acceptor};

use scan::Scanner;
use watch::{Activity, WatchedIo};

/// Feeds `pieces` (a client's bytes, split as they arrived) to a fresh raw-head scanner and
/// returns what it said about each piece: `Err(offset)` points at a control byte in a
/// chunk-size line. Only for the fuzz targets in `fuzz/`, which cannot reach the private
/// scanner otherwise; not part of the API.
#[doc(hidden)]
pub fn fuzz_scan(pieces: &[&[u8]], max_headers: usize, max_head: usize) -> Vec<Result<(), usize>> {
    let activity = Activity::new();
    let mut scanner = Scanner::new(max_headers, max_head);
    pieces
        .iter()
        .map(|piece| scanner.feed(piece, &activity))
        .collect()
}

/// HTTP/2 streams a client may reset before the server has accepted them, per connection,
/// before the connection gets GOAWAY ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487; hyper's
/// default is 20). h2 counts only streams still waiting to be accepted, so a client pacing its
/// resets is caught by `Limits::h2_max_cancelled_streams` instead.
const H2_MAX_PENDING_RESETS: usize = 20;

/// HTTP/2 streams the server may reset for a client's protocol errors before it closes the
/// connection (hyper's default is 1024).
const H2_MAX_LOCAL_RESETS: usize = 1024;

/// Limits applied to every client connection, from `[listen]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time from a request head's first byte to its end.
    pub header_read_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_read_timeout: Duration,
    /// Close a connection with no request in flight for this long (HTTP/1.1: and no bytes).
    pub idle_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Most header fields in a request head.
    pub max_headers: usize,
    /// Longest request target.
    pub max_uri_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// Requests a client may cancel before their answer; past it (and past half of the
    /// connection's requests) the connection is closed.
    pub h2_max_cancelled_streams: u64,
    /// Time in-flight requests get on shutdown.
    pub shutdown_grace: Duration,
}

impl From<&ListenConfig> for Limits {
    fn from(c: &ListenConfig) -> Self {
        let bytes =
            |size: &crate::config::ByteSize| usize::try_from(size.bytes()).unwrap_or(usize::MAX);
        Self {
            max_connections: c.max_connections,
            header_read_timeout: c.header_read_timeout,
            body_read_timeout: c.body_read_timeout,
            idle_timeout: c.idle_timeout,
            max_header_bytes: bytes(&c.max_header_bytes),
            max_headers: c.max_headers,
            max_uri_bytes: bytes(&c.max_uri_bytes),
            h2_max_concurrent_streams: c.h2_max_concurrent_streams,
            h2_max_cancelled_streams: c.h2_max_cancelled_streams,
            shutdown_grace: c.shutdown_grace,
        }
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Serves connections until `shutdown` is cancelled, then drains them.
///
/// `make_service` is called once per connection and answers each request.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    shutdown: CancellationToken,
    handler: F,
) where
    F: Fn(Request<ClientBody>, Peer) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let builder = Arc::new(http_builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let hard_stop = CancellationToken::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer {
            addr,
            tls: tls.is_some(),
        };
        let task = connection(
            stream,
            peer,
            tls.clone(),
            builder.clone(),
            limits.clone(),
            shutdown.clone(),
            hard_stop.clone(),
            handler.clone(),
        );
        connections.spawn(async move {
            task.await;
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown grace period over; closing remaining connections"
        );
        hard_stop.cancel();
        connections.wait().await;
    }
}

/// The number of header fields hyper's HTTP/1 parser takes when not told otherwise.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No `header_read_timeout` here: hyper's also times the wait for the next request on a
    // kept-alive connection, which is the idle timeout's business. `drive` times heads from
    // their first byte instead.
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    // hyper's own limit is 100 fields, parsed into a buffer on the stack; naming any limit
    // (even 100) makes it fill a buffer field by field on every request (~1.7 k
    // instructions), so it is named only when it differs.
    if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        http1.max_headers(limits.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(Some(H2_MAX_PENDING_RESETS))
        .max_local_error_reset_streams(Some(H2_MAX_LOCAL_RESETS))
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

#[allow(clippy::too_many_arguments)]
async fn connection<F, Fut>(
    stream: TcpStream,
    peer: Peer,
    tls: Option<tokio_rustls::TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Limits,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
    handler: F,
) where
    F: Fn(Request<ClientBody>, Peer) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    match tls {
        None => {
            drive(
                TokioIo::new(WatchedIo::new(stream, scanner(&limits))),
                peer,
                &builder,
                &limits,
                shutdown,
                hard_stop,
                handler,
            )
            .await
        }
        // Boxed: the TLS state would otherwise size every plain connection's task for it
        // (measured: 7.1 KiB → 2.3 KiB per connection task in a debug build).
        Some(acceptor) => {
            Box::pin(async move {
                let handshake =
                    tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
                match handshake.await {
                    Ok(Ok(stream)) => {
                        drive(
                            TokioIo::new(WatchedIo::new(stream, scanner(&limits))),
                            peer,
                            &builder,
                            &limits,
                            shutdown,
                            hard_stop,
                            handler,
                        )
                        .await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(client = %peer.addr, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(client = %peer.addr, "TLS handshake timed out"),
                }
            })
            .await
        }
    }
}

fn scanner(limits: &Limits) -> Scanner {
    Scanner::new(limits.max_headers, limits.max_header_bytes.max(8192))
}

async fn drive<S, F, Fut>(
    io: TokioIo<WatchedIo<S>>,
    peer: Peer,
    builder: &auto::Builder<TokioExecutor>,
    limits: &Limits,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
    handler: F,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<ClientBody>, Peer) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let activity: Activity = io.inner().activity();
    let service_activity = activity.clone();
    let max_uri = limits.max_uri_bytes;
    let body_timeout = limits.body_read_timeout;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let handler = handler.clone();
        let mut in_flight = service_activity.request_started();
        let refusal = match service_activity.refusal(in_flight.seq()) {
            Some(why) => Some(Refusal::BadRequest(why)),
            None => guard::check(&request, max_uri).err(),
        };
        async move {
            let response = match refusal {
                Some(refusal) => {
                    tracing::debug!(client = %peer.addr, ?refusal, "request refused");
                    refusal.into_response()
                }
                None => answer(request, peer, body_timeout, handler).await,
            };
            in_flight.answered();
            drop(in_flight);
            Ok::<_, Infallible>(response)
        }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    let check_every = limits
        .idle_timeout
        .min(limits.header_read_timeout)
        .max(Duration::from_millis(40))
        / 4;
    let mut check = tokio::time::interval(check_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(client = %peer.addr, error = %crate::forward::error_chain(&*e), "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = check.tick() => {
                if activity.head_age().is_some_and(|age| age >= limits.header_read_timeout) {
                    tracing::debug!(client = %peer.addr, "request head not received in time; closing");
                    return;
                }
                let idle = activity.idle_for();
                if idle >= limits.idle_timeout && !draining {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                } else if idle >= limits.idle_timeout.saturating_mul(2) {
                    // Still open a whole idle period after being asked to close: a client
                    // that does not read its answer. Drop it.
                    tracing::debug!(client = %peer.addr, "idle connection did not close; dropping it");
                    return;
                }
            }
            () = activity.cancellation() => {
                if activity.cancels_too_many(limits.h2_max_cancelled_streams) {
                    tracing::debug!(client = %peer.addr, "client cancelled most of its requests before their answer (rapid reset); closing");
                    return;
                }
            }
            () = hard_stop.cancelled() => return,
        }
    }
}

/// Runs the handler on a guarded request; turns a stalled body into 408, and closes an
/// HTTP/1.1 connection whose upgrade was not accepted (what follows it cannot be trusted to
/// be HTTP).
async fn answer<F, Fut>(
    request: Request<Incoming>,
    peer: Peer,
    body_timeout: Duration,
    handler: F,
) -> Response<ProxyBody>
where
    F: Fn(Request<ClientBody>, Peer) -> Fut,
    Fut: Future<Output = Response<ProxyBody>>,
{
    let upgrade =
        request.version() == Version::HTTP_11 && request.headers().contains_key(header::UPGRADE);
    let (parts, body) = request.into_parts();
    let (body, timed_out) = ClientBody::new(body, body_timeout);
    let mut response = handler(Request::from_parts(parts, body), peer).await;
    if timed_out.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
        tracing::debug!(client = %peer.addr, "request body stalled; answering 408");
        return Refusal::BodyTimeout.into_response();
    }
    if upgrade && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
