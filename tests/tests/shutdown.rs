//! Graceful shutdown of the real `strangler` binary on SIGTERM: in-flight requests finish,
//! the process exits 0 (within the grace period, even with idle keep-alive connections open,
//! and after it when a request outlives it), and the port is closed afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use system_tests::fake::{self, Behaviour};
use system_tests::running::Running;
use system_tests::wait::eventually;
use system_tests::{raw_client, routes_toml};

/// How long a request may take to reach the fake upstream.
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(10);
/// Bound on waiting for the process to exit; shorter than any grace period meant to be unused.
const EXIT_DEADLINE: Duration = Duration::from_secs(20);

/// A routes.toml sending everything to `legacy_url`, with `listen_extra` in `[listen]` and
/// `upstream_extra` in `[upstreams.legacy]`.
fn config(legacy_url: &str, listen_extra: &str, upstream_extra: &str) -> String {
    routes_toml(legacy_url, "")
        .replace(
            "[listen]\naddress = \"127.0.0.1:0\"\n",
            &format!("[listen]\naddress = \"127.0.0.1:0\"\n{listen_extra}\n"),
        )
        .replace(
            &format!("url = \"{legacy_url}\"\n"),
            &format!("url = \"{legacy_url}\"\n{upstream_extra}\n"),
        )
}

/// After exit, nothing accepts on the proxy's port.
async fn assert_refused(addr: SocketAddr) {
    let attempt = tokio::net::TcpStream::connect(addr).await;
    assert!(
        attempt.is_err(),
        "a connection to {addr} was accepted after the proxy exited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish() {
    let slow = fake::start(Behaviour::SlowOk(1500)).await;
    let mut proxy = Running::start_with(&config(&slow.url(), "shutdown_grace = \"10s\"", ""));
    let request = tokio::spawn(raw_client().get(format!("{}/slow", proxy.url())).send());
    eventually(
        "the request to reach the upstream",
        ARRIVAL_DEADLINE,
        || async { (slow.count() >= 1).then_some(()) },
    )
    .await;

    proxy.signal("TERM");
    let response = request
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the in-flight request failed: {e}\n{}", proxy.stderr()));
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slow");

    let status = proxy.exited(EXIT_DEADLINE).await;
    assert!(
        status.success(),
        "strangler exited with {status}; stderr:\n{}",
        proxy.stderr()
    );
    assert_refused(proxy.addr()).await;
    assert_eq!(slow.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_do_not_hold_shutdown() {
    let quick = fake::start(Behaviour::SlowOk(0)).await;
    // A grace period far beyond the exit deadline: only closing idle connections at once lets
    // the process exit in time.
    let mut proxy = Running::start_with(&config(&quick.url(), "shutdown_grace = \"120s\"", ""));
    let client = raw_client();
    for _ in 0..3 {
        let response = client
            .get(format!("{}/x", proxy.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "slow");
    }
    // `client` keeps its pooled connection open (idle) across the shutdown.
    proxy.signal("TERM");
    let status = proxy.exited(EXIT_DEADLINE).await;
    assert!(
        status.success(),
        "strangler exited with {status}; stderr:\n{}",
        proxy.stderr()
    );
    assert_refused(proxy.addr()).await;
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outliving_the_grace_period_is_cut_and_the_process_exits() {
    let hang = fake::start(Behaviour::Hang).await;
    let mut proxy = Running::start_with(&config(
        &hang.url(),
        "shutdown_grace = \"300ms\"",
        "response_timeout = \"120s\"",
    ));
    let request = tokio::spawn(raw_client().get(format!("{}/forever", proxy.url())).send());
    eventually(
        "the request to reach the upstream",
        ARRIVAL_DEADLINE,
        || async { (hang.count() >= 1).then_some(()) },
    )
    .await;

    proxy.signal("TERM");
    let status = proxy.exited(EXIT_DEADLINE).await;
    assert!(
        status.success(),
        "strangler exited with {status}; stderr:\n{}",
        proxy.stderr()
    );
    let outcome = tokio::time::timeout(EXIT_DEADLINE, request)
        .await
        .expect("the client hung after the proxy exited")
        .unwrap();
    assert!(
        outcome.is_err(),
        "the cut request got an answer: {outcome:?}"
    );
    assert_refused(proxy.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_right_after_start_reloads_instead_of_killing() {
    let quick = fake::start(Behaviour::SlowOk(0)).await;
    let mut proxy = Running::start_with(&config(&quick.url(), "", ""));
    // The address is printed, so the process is up: SIGHUP now means "reload", whose
    // default action (terminate) must already be replaced.
    proxy.signal("HUP");
    let response = raw_client()
        .get(format!("{}/after-hup", proxy.url()))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the proxy died of SIGHUP ({e}); stderr:\n{}",
                proxy.stderr()
            )
        });
    assert_eq!(response.text().await.unwrap(), "slow");
    assert!(proxy.is_running(), "the proxy exited after SIGHUP");

    proxy.signal("TERM");
    let status = proxy.exited(EXIT_DEADLINE).await;
    assert!(
        status.success(),
        "strangler exited with {status}; stderr:\n{}",
        proxy.stderr()
    );
}
