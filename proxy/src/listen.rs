//! The client-facing listener: accept, TLS, per-connection limits, graceful drain.
//!
//! HTTP/1.1 and HTTP/2 are served on one port (h2c by prior knowledge; with TLS, by ALPN).
//! Open connections are capped by a semaphore around `accept`: at the cap, new clients wait
//! in the kernel's backlog instead of being accepted and starved. On shutdown the listener
//! stops accepting, asks every connection to finish its in-flight requests, and drops what
//! is left after the grace period.

mod idle;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ListenConfig;
use crate::forward::ProxyBody;

pub use tls::{TlsError, load_acceptor};

use idle::{Activity, IdleIo};

/// Limits applied to every client connection, from `[listen]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to receive a complete request head.
    pub header_read_timeout: Duration,
    /// Close a connection with no request in flight and no bytes moving for this long.
    pub idle_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Time in-flight requests get on shutdown.
    pub shutdown_grace: Duration,
}

impl From<&ListenConfig> for Limits {
    fn from(c: &ListenConfig) -> Self {
        Self {
            max_connections: c.max_connections,
            header_read_timeout: c.header_read_timeout,
            idle_timeout: c.idle_timeout,
            max_header_bytes: usize::try_from(c.max_header_bytes.bytes()).unwrap_or(usize::MAX),
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
    F: Fn(Request<Incoming>, Peer) -> Fut + Clone + Send + Sync + 'static,
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

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(1024))
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
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
    F: Fn(Request<Incoming>, Peer) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    match tls {
        None => {
            drive(
                TokioIo::new(IdleIo::new(stream)),
                peer,
                &builder,
                &limits,
                shutdown,
                hard_stop,
                handler,
            )
            .await
        }
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => {
                    drive(
                        TokioIo::new(IdleIo::new(stream)),
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
        }
    }
}

async fn drive<S, F, Fut>(
    io: TokioIo<IdleIo<S>>,
    peer: Peer,
    builder: &auto::Builder<TokioExecutor>,
    limits: &Limits,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
    handler: F,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>, Peer) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let activity: Activity = io.inner().activity();
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let handler = handler.clone();
        let guard = service_activity.request_started();
        async move {
            let response = handler(request, peer).await;
            drop(guard);
            Ok::<_, Infallible>(response)
        }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    let mut idle_check =
        tokio::time::interval(limits.idle_timeout.max(Duration::from_millis(10)) / 2);
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
            _ = idle_check.tick(), if !draining => {
                if activity.idle_for() >= limits.idle_timeout {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = hard_stop.cancelled() => return,
        }
    }
}
