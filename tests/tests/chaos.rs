//! Chaos: parts of the system die under traffic, and the client sees a clean answer.
//!
//! What other suites already cover, and is not repeated here:
//! - upstream failures one request at a time (refused, reset, closed, slow): `failures.rs`;
//! - a candidate that hangs, resets, closes or fails, per copy: `shadow/isolation.rs`;
//! - the broker killed under load, nothing lost: `bus_outage.rs`;
//! - 100 reloads under load, zero failed requests: `reload.rs`
//!   (`reload_under_load_never_fails_a_request`);
//! - SIGTERM with one request in flight, idle keep-alives, the grace period: `shutdown.rs`.
//!
//! Here: legacy killed with requests in flight and brought back on the same port; the
//! candidate killed with copies in flight, then brought back; SIGTERM with many requests in
//! flight at once; and the binary's debug log through all of that, which must hold no secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use system_tests::fake::{self, Behaviour};
use system_tests::running::Running;
use system_tests::wait::{eventually, until};
use system_tests::{Proxy, named, raw_client, routes_toml};

/// Bound for "does not hang", far below any timeout that would otherwise fire.
const NO_HANG: Duration = Duration::from_secs(20);
/// Bound on waiting for requests to arrive somewhere, or for a port to be free again.
const DEADLINE: Duration = Duration::from_secs(10);
/// Requests in flight when something is killed.
const IN_FLIGHT: usize = 16;
/// Requests that must all succeed once a killed part is back.
const AFTER: usize = 20;

/// What a [`Killable`] upstream does with a request.
#[derive(Clone, Copy)]
enum Serve {
    /// Reads the head and never answers: the request stays in flight until the kill.
    Hold,
    /// Answers `200` with this body.
    Answer(&'static str),
    /// Answers `200` with this body and a `Set-Cookie` carrying [`SET_COOKIE_SECRET`].
    AnswerWithCookie(&'static str),
}

/// Credentials the log test sends or receives; none may appear in the proxy's log.
const AUTHORIZATION_SECRET: &str = "authz-4f1c9e7d";
const COOKIE_SECRET: &str = "cookie-8b2d7a01";
const SET_COOKIE_SECRET: &str = "setcookie-3e6f0c55";
const ADMIN_TOKEN: &str = "admintoken-9a5b1d2e";
const WRONG_TOKEN: &str = "wrongtoken-2c7e4f90";

/// An upstream whose accept loop owns its connections: [`Killable::kill`] drops the listener
/// and every open socket at once, as a crashed process would.
struct Killable {
    addr: SocketAddr,
    /// Request heads received.
    heads: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Killable {
    /// Starts on `addr` (port 0 for a fresh one), retrying while a killed predecessor's port
    /// is still held.
    async fn start(addr: SocketAddr, serve: Serve) -> Self {
        let listener = eventually("the upstream port to be free", DEADLINE, || async move {
            TcpListener::bind(addr).await.ok()
        })
        .await;
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(listener, serve, heads.clone()));
        Self { addr, heads, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection, mid-request or not; returns the address.
    async fn kill(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }
}

async fn accept_loop(listener: TcpListener, serve: Serve, heads: Arc<AtomicUsize>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let heads = heads.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                heads.fetch_add(1, Ordering::SeqCst);
                async move {
                    match serve {
                        Serve::Hold => std::future::pending().await,
                        Serve::Answer(body) => {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                        }
                        Serve::AnswerWithCookie(body) => {
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            response.headers_mut().insert(
                                "set-cookie",
                                format!("sid={SET_COOKIE_SECRET}; HttpOnly")
                                    .parse()
                                    .unwrap(),
                            );
                            Ok(response)
                        }
                    }
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `GET url`, bounded by [`NO_HANG`]: the status and body, or the client's error.
async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let response = tokio::time::timeout(NO_HANG, client.get(url).send())
        .await
        .map_err(|_| format!("GET {url} hung"))?
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| format!("body: {e}"))?;
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_killed_mid_request_is_a_clean_502_and_service_resumes_when_it_returns() {
    let legacy = Killable::start(([127, 0, 0, 1], 0).into(), Serve::Hold).await;
    let proxy = Proxy::start(&routes_toml(&legacy.url(), "")).await;
    let client = raw_client();

    let in_flight: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let (client, url) = (client.clone(), format!("{}/orders/{i}", proxy.url()));
            tokio::spawn(async move { client.get(url).send().await })
        })
        .collect();
    until("every request to reach legacy", DEADLINE, || {
        legacy.heads() >= IN_FLIGHT
    })
    .await;
    let addr = legacy.kill().await;

    for request in in_flight {
        let response = tokio::time::timeout(NO_HANG, request)
            .await
            .expect("a request in flight at the kill hung")
            .unwrap()
            .expect("a request in flight at the kill got no answer");
        assert_eq!(response.status(), 502);
        assert_eq!(response.headers()["x-strangler-error"], "upstream-failed");
    }
    // While legacy is down: a quick 502 as well, never a hang.
    let (status, _) = get(&client, &format!("{}/orders/down", proxy.url()))
        .await
        .unwrap();
    assert_eq!(status, 502);

    let back = Killable::start(addr, Serve::Answer("back")).await;
    for i in 0..AFTER {
        let answer = get(&client, &format!("{}/orders/after/{i}", proxy.url())).await;
        assert_eq!(
            answer,
            Ok((200, "back".to_owned())),
            "request {i} after legacy returned"
        );
    }
    assert_eq!(back.heads(), AFTER);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_killed_during_shadow_never_fails_a_client() {
    let legacy = named::start("legacy").await;
    let candidate = Killable::start(([127, 0, 0, 1], 0).into(), Serve::Hold).await;
    // No baseline copies: each of them is a second legacy request, which would make
    // legacy's count below depend on which requests the baseline share picked.
    let extra = format!(
        r#"[upstreams.candidate]
url = "{}"

[[routes]]
id = "shadowed"
match = {{ path = "/s/*" }}
mode = "shadow"
extracted = "candidate"
shadow = {{ baseline = 0.0 }}
"#,
        candidate.url()
    );
    let proxy = Proxy::start(&routes_toml(&legacy.url(), &extra)).await;
    let client = raw_client();

    for i in 0..IN_FLIGHT {
        let answer = get(&client, &format!("{}/s/{i}", proxy.url())).await;
        assert_eq!(answer, Ok((200, "legacy".to_owned())), "request {i}");
    }
    until("the copies to reach the candidate", DEADLINE, || {
        candidate.heads() >= IN_FLIGHT
    })
    .await;
    let addr = candidate.kill().await;

    // Dead candidate: copies are refused; clients never notice.
    for i in 0..AFTER {
        let answer = get(&client, &format!("{}/s/dead/{i}", proxy.url())).await;
        assert_eq!(answer, Ok((200, "legacy".to_owned())), "request {i}");
    }

    // Back on the same port: copies reach it again, clients still get legacy's answer.
    let back = Killable::start(addr, Serve::Answer("legacy")).await;
    for i in 0..AFTER {
        let answer = get(&client, &format!("{}/s/back/{i}", proxy.url())).await;
        assert_eq!(answer, Ok((200, "legacy".to_owned())), "request {i}");
    }
    until("copies to reach the returned candidate", DEADLINE, || {
        back.heads() >= 1
    })
    .await;
    assert_eq!(legacy.hits(), IN_FLIGHT + 2 * AFTER);
    proxy.stop().await;
}

/// Starts `strangler run` on `config` in `dir` with `RUST_LOG=log`; returns it, its client
/// address and its admin address.
fn run(dir: &std::path::Path, config: &str, log: &str) -> (Running, SocketAddr, SocketAddr) {
    let path = dir.join("routes.toml");
    std::fs::write(&path, config).unwrap();
    let running = Running::start_logging(&path, log);
    let (addr, admin) = (running.addr(), running.admin());
    (running, addr, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_lets_every_in_flight_request_finish() {
    let slow = fake::start(Behaviour::SlowOk(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = routes_toml(&slow.url(), "").replace(
        "[listen]\naddress = \"127.0.0.1:0\"\n",
        "[listen]\naddress = \"127.0.0.1:0\"\nshutdown_grace = \"15s\"\n",
    );
    let (mut proxy, addr, _) = run(dir.path(), &config, "info");
    let stderr = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();

    let client = raw_client();
    let in_flight: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let (client, url) = (client.clone(), format!("http://{addr}/load/{i}"));
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    until("every request to reach the upstream", DEADLINE, || {
        slow.count() >= IN_FLIGHT
    })
    .await;

    proxy.signal("TERM");

    for (i, request) in in_flight.into_iter().enumerate() {
        let answer = request.await.unwrap();
        assert_eq!(
            answer,
            Ok((200, "slow".to_owned())),
            "in-flight request {i}; stderr:\n{}",
            stderr()
        );
    }
    let exit = proxy.exited(NO_HANG).await;
    assert!(exit.success(), "exited with {exit}; stderr:\n{}", stderr());
    assert_eq!(slow.count(), IN_FLIGHT, "no request was sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_the_debug_log_while_legacy_dies() {
    let legacy = Killable::start(([127, 0, 0, 1], 0).into(), Serve::AnswerWithCookie("L")).await;
    let candidate = Killable::start(([127, 0, 0, 1], 0).into(), Serve::Answer("C")).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
    // A shadowed route whose candidate disagrees, so comparisons and captures run too.
    let extra = format!(
        r#"[upstreams.candidate]
url = "{}"

[[routes]]
id = "shadowed"
match = {{ path = "/s/*" }}
mode = "shadow"
extracted = "candidate"
"#,
        candidate.url()
    );
    let config = routes_toml(&legacy.url(), &extra).replace(
        "[admin]\naddress = \"127.0.0.1:0\"\n",
        &format!(
            "[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
            token_file.display()
        ),
    );
    let (mut proxy, addr, admin) = run(dir.path(), &config, "debug");
    let stderr = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();

    let h1 = raw_client();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let with_secrets = |client: &reqwest::Client, url: String| {
        client
            .get(url)
            .header("authorization", format!("Bearer {AUTHORIZATION_SECRET}"))
            .header("cookie", format!("session={COOKIE_SECRET}"))
            .send()
    };
    for (i, client) in [&h1, &h2].into_iter().cycle().take(2 * AFTER).enumerate() {
        // Both clients on both routes: h1 and h2 to the shadowed one and to legacy alone.
        let path = if (i / 2) % 2 == 0 { "s" } else { "orders" };
        let response = with_secrets(client, format!("http://{addr}/{path}/{i}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
    }
    // Admin mutations: a wrong token, then the right one.
    for (token, status) in [(WRONG_TOKEN, 401), (ADMIN_TOKEN, 200)] {
        let response = h1
            .post(format!("http://{admin}/admin/reload"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "admin reload with {token}");
    }
    // Legacy dies: every failure path logs, with the credentials still on the requests.
    legacy.kill().await;
    for (i, client) in [&h1, &h2].into_iter().enumerate() {
        let response = with_secrets(client, format!("http://{addr}/orders/down/{i}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 502);
    }
    // A refused (smuggling) request carrying them too.
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    let smuggle = format!(
        "POST /p HTTP/1.1\r\nHost: shop.example\r\nAuthorization: Bearer {AUTHORIZATION_SECRET}\r\n\
         Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
    );
    tokio::io::AsyncWriteExt::write_all(&mut raw, smuggle.as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        NO_HANG,
        tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut answer),
    )
    .await;
    assert!(answer.starts_with(b"HTTP/1.1 400 "), "{answer:?}");

    proxy.signal("TERM");
    let exit = proxy.exited(NO_HANG).await;
    assert!(exit.success(), "exited with {exit}; stderr:\n{}", stderr());
    let log = stderr();
    assert!(
        log.contains("DEBUG") && log.contains("/orders/down/0"),
        "the log was not at debug level, or the failed requests are not in it:\n{log}"
    );
    for secret in [
        AUTHORIZATION_SECRET,
        COOKIE_SECRET,
        SET_COOKIE_SECRET,
        ADMIN_TOKEN,
        WRONG_TOKEN,
    ] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            lines.is_empty(),
            "{secret} is in the log:\n{}",
            lines.join("\n")
        );
    }
    assert!(candidate.heads() > 0, "the shadow copies ran");
}
