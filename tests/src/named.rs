//! A well-behaved upstream that answers every request with its own name, so a test can tell
//! which upstream the proxy chose from the body alone, and that counts what reached it, so a
//! test can prove that a refused request never did.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A named upstream on an ephemeral port; it stops (with its connections) when dropped.
pub struct Named {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it answers: the body of every response and its `x-upstream` header.
    pub name: Arc<str>,
    /// Requests whose head reached it.
    hits: Arc<AtomicUsize>,
    /// Request body bytes it read, over all requests.
    body_bytes: Arc<AtomicU64>,
    /// The accept loop; it owns the connection tasks, so aborting it ends them too.
    task: JoinHandle<()>,
}

impl Named {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far (counted when the head arrives, before the body is read).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Request body bytes read so far.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::SeqCst)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an upstream that answers `200 OK` with body `name` (and `x-upstream: name`) to
/// every request, after reading the request body whole. HTTP/1.1 and h2c.
pub async fn start(name: &str) -> Named {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind named upstream");
    let addr = listener.local_addr().expect("named upstream address");
    let name: Arc<str> = Arc::from(name);
    let hits = Arc::new(AtomicUsize::new(0));
    let body_bytes = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(accept_loop(
        listener,
        name.clone(),
        hits.clone(),
        body_bytes.clone(),
    ));
    Named {
        addr,
        name,
        hits,
        body_bytes,
        task,
    }
}

async fn accept_loop(
    listener: TcpListener,
    name: Arc<str>,
    hits: Arc<AtomicUsize>,
    body_bytes: Arc<AtomicU64>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        // Reap finished connections so the set stays small in long tests.
        while connections.try_join_next().is_some() {}
        let (name, hits, body_bytes) = (name.clone(), hits.clone(), body_bytes.clone());
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (name, body_bytes) = (name.clone(), body_bytes.clone());
                hits.fetch_add(1, Ordering::SeqCst);
                async move {
                    let read = request
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes().len())
                        .unwrap_or(0);
                    body_bytes.fetch_add(read as u64, Ordering::SeqCst);
                    let response = Response::builder()
                        .header("content-type", "text/plain")
                        .header("x-upstream", &*name)
                        .body(Full::new(Bytes::from(name.to_string())))
                        .expect("static response parts are valid");
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
