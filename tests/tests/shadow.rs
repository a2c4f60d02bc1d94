//! Shadowing as a user sees it: a route in `shadow` mode (or the non-canary share of `canary`)
//! is answered by legacy while a copy goes to the candidate, and the two answers are compared
//! off the hot path. What these tests hold the proxy to, one module each:
//!
//! - `isolation`: the copy never slows or fails the client, whatever the candidate does (hang,
//!   answer late, reset, close, fail), and each copy not compared is counted with its reason;
//! - `bodies`: a request body too large to mirror still reaches legacy whole, and the
//!   candidate gets none of it, whether its length is declared or only found while streaming;
//! - `copies`: writes are mirrored only when the route says so, marked, with the route's header
//!   edits on the copy alone; nothing of the candidate's answer reaches the client;
//! - `sampling`: sampling is a stable per-user share, disjoint from the canary share;
//! - `noise`: noise learned from legacy disagreeing with itself is told apart from a real bug;
//! - `reloads`: a reload that changes shadow settings keeps what was counted.
//!
//! Findings are read where a user reads them: `GET /admin/shadow` and `GET /admin/diffs`
//! ([`system_tests::findings`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "shadow/bodies.rs"]
mod bodies;
#[path = "shadow/copies.rs"]
mod copies;
#[path = "shadow/isolation.rs"]
mod isolation;
#[path = "shadow/noise.rs"]
mod noise;
#[path = "shadow/reloads.rs"]
mod reloads;
#[path = "shadow/sampling.rs"]
mod sampling;

use std::time::{Duration, Instant};

use bytes::Bytes;
use strangler::reload::Outcome;
use system_tests::Proxy;
use system_tests::{findings, wait};

/// Upper bound on a test's client loop, whatever the proxy does ("does not hang").
const NO_HANG: Duration = Duration::from_secs(60);
/// Client requests sent at once in the bulk loops.
const IN_FLIGHT: usize = 16;

/// Polls a fixture's `check` until it holds, for as long as shadow findings may take.
async fn until(what: &str, check: impl FnMut() -> bool) {
    wait::until(what, findings::DEADLINE, check).await;
}

// === Talking to the proxy ===

/// An answer read whole, and the moment its last byte was in.
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
    complete_at: Instant,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Sends `method url` with `headers` and `body`, and reads the answer whole.
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Got {
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !body.is_empty() {
        request = request.body(body.to_owned());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{url}: body: {e}"));
    Got {
        status,
        headers,
        body,
        complete_at: Instant::now(),
    }
}

async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Got {
    send(client, reqwest::Method::GET, url, headers, "").await
}

/// Rewrites the proxy's routes.toml and makes sure the new text is live.
async fn reload(proxy: &Proxy, text: &str) {
    let before = proxy.handle.shared().snapshot().generation;
    std::fs::write(proxy.config_path(), text).unwrap();
    match proxy.handle.reload().await {
        Outcome::Applied { .. } | Outcome::Unchanged => {}
        Outcome::Rejected(diags) => panic!("a valid file was rejected: {diags}"),
    }
    assert!(
        proxy.handle.shared().snapshot().generation > before,
        "the changed routes.toml was not applied"
    );
}
