//! Transparency, through real sockets: the same request sent directly to legacy-shim and
//! through the proxy gets the same status, the same end-to-end header fields (plus exactly one
//! `Via: 1.1 strangler`) and the same body bytes — over HTTP/1.1, h2c, and TLS with HTTP/1.1
//! or h2 chosen by ALPN.
//!
//! Each test starts [`Twins`]: two identical stable legacy-shims with fresh databases, one
//! asked directly, one behind the proxy, and sends both the table in `transparency/cases.rs`
//! in the same order, so writes hand out the same ids on both sides.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "transparency/cases.rs"]
mod cases;

use std::collections::HashMap;

use system_tests::exchange::{Client, Exchange, Req, Twins, Version, differences};
use system_tests::tls::SelfSigned;

// === the table's shape ===

/// One kind of request and what the direct answer must look like (so the table cannot rot
/// into comparing two identical errors).
struct Case {
    /// Also the key later cases use to read this one's answer.
    name: &'static str,
    /// The direct answer's status.
    status: u16,
    /// Builds the request from what this side answered so far.
    build: fn(&History) -> Req,
    /// Only HTTP/1.x can say this request (raw bytes or absolute/asterisk form in the
    /// target, HTTP/1.0, chunked framing), so runs with an HTTP/2 side skip it.
    h1_only: bool,
    /// Header fields the direct answer must carry (`None`: any value).
    headers: Vec<(&'static str, Option<&'static str>)>,
}

/// A case expecting `status` from the direct answer.
fn case(name: &'static str, status: u16, build: fn(&History) -> Req) -> Case {
    Case {
        name,
        status,
        build,
        h1_only: false,
        headers: Vec::new(),
    }
}

impl Case {
    fn h1_only(mut self) -> Self {
        self.h1_only = true;
        self
    }

    fn expect_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, Some(value)));
        self
    }

    fn expect_header_present(mut self, name: &'static str) -> Self {
        self.headers.push((name, None));
        self
    }

    /// What is wrong with the direct answer, if anything.
    fn check(&self, direct: &Exchange) -> Vec<String> {
        let mut out = Vec::new();
        if direct.status != self.status {
            out.push(format!(
                "the direct answer is {}, the table expects {}: {:?}…",
                direct.status,
                self.status,
                direct.text().chars().take(120).collect::<String>()
            ));
        }
        for (name, value) in &self.headers {
            match (direct.header_all(name).is_empty(), value) {
                (true, _) => out.push(format!("the direct answer has no {name}")),
                (false, Some(value)) if direct.header(name) != *value => {
                    out.push(format!(
                        "the direct answer has {name}: {:?}, the table expects {value:?}",
                        direct.header(name)
                    ));
                }
                _ => {}
            }
        }
        out
    }
}

/// What one side answered so far, by case name.
#[derive(Default)]
struct History(HashMap<&'static str, Exchange>);

impl History {
    /// Header `name` of the answer to case `case` (which must have run).
    fn header(&self, case: &str, name: &str) -> String {
        let answer = self
            .0
            .get(case)
            .unwrap_or_else(|| panic!("case {case:?} has not run yet"));
        answer.header(name).to_owned()
    }
}

// === the runner ===

/// Sends every case in order to `direct` and to `proxied`; returns one report per case that
/// failed, and how many cases ran.
async fn run(direct: &Client, proxied: &Client) -> (Vec<String>, usize) {
    let (mut seen_direct, mut seen_proxied) = (History::default(), History::default());
    let mut failures = Vec::new();
    let mut ran = 0;
    for (n, case) in cases::all().into_iter().enumerate() {
        if case.h1_only && (direct.version != Version::Http1 || proxied.version != Version::Http1) {
            continue;
        }
        ran += 1;
        let id = format!("transparency-{n:03}");
        let to_direct = (case.build)(&seen_direct).header("x-request-id", &id);
        let to_proxy = (case.build)(&seen_proxied).header("x-request-id", &id);
        let line = to_direct.line();
        let (a, b) = (direct.send(&to_direct).await, proxied.send(&to_proxy).await);
        let problems = match (&a, &b) {
            (Ok(a), Ok(b)) => [case.check(a), differences(a, b)].concat(),
            (a, b) => vec![format!(
                "transport: direct {:?}, proxied {:?}",
                a.as_ref().err(),
                b.as_ref().err()
            )],
        };
        if !problems.is_empty() {
            failures.push(format!(
                "case {n} {:?} ({line}), direct {} vs proxied {}:\n    {}",
                case.name,
                direct.label(),
                proxied.label(),
                problems.join("\n    ")
            ));
        }
        if let (Ok(a), Ok(b)) = (a, b) {
            seen_direct.0.insert(case.name, a);
            seen_proxied.0.insert(case.name, b);
        }
    }
    (failures, ran)
}

/// Runs the table and fails with every difference found.
async fn assert_table_transparent(direct: &Client, proxied: &Client) {
    let (failures, ran) = run(direct, proxied).await;
    assert!(ran >= 30, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases differ between direct and proxied:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// === the tests ===

#[tokio::test]
async fn every_answer_is_the_same_through_the_proxy_over_http1() {
    let twins = Twins::start("", &[]).await;
    assert_table_transparent(
        &Client::h1(twins.direct.addr),
        &Client::h1(twins.proxy.handle.addr()),
    )
    .await;
    twins.stop().await;
}

#[tokio::test]
async fn every_answer_is_the_same_on_one_kept_alive_connection() {
    let twins = Twins::start("", &[]).await;
    let direct = Client::h1(twins.direct.addr).keep_alive();
    let proxied = Client::h1(twins.proxy.handle.addr()).keep_alive();
    assert_table_transparent(&direct, &proxied).await;
    // A connection ends only after an HTTP/1.0 request (the table has two).
    assert_eq!(direct.connections(), 3, "connections the shop kept open");
    assert_eq!(proxied.connections(), 3, "connections the proxy kept open");
    twins.stop().await;
}

#[tokio::test]
async fn an_h2c_client_gets_the_answers_the_http1_upstream_gives_directly() {
    let twins = Twins::start("", &[]).await;
    assert_table_transparent(
        &Client::h1(twins.direct.addr),
        &Client::h2c(twins.proxy.handle.addr()),
    )
    .await;
    twins.stop().await;
}

/// Starts twins whose proxy terminates TLS with a fresh self-signed certificate, named
/// relative to routes.toml.
async fn tls_twins() -> (Twins, SelfSigned) {
    let cert = SelfSigned::localhost();
    let files: [(&str, &[u8]); 2] = [
        ("cert.pem", cert.cert_pem.as_bytes()),
        ("key.pem", cert.key_pem.as_bytes()),
    ];
    let twins = Twins::start(
        "[listen.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
        &files,
    )
    .await;
    (twins, cert)
}

/// The direct side of a TLS run: told what a TLS front door tells the monolith, so links it
/// builds (feeds) say `https` on both sides.
fn direct_behind_tls(twins: &Twins) -> Client {
    Client::h1(twins.direct.addr).with_header("x-forwarded-proto", "https")
}

#[tokio::test]
async fn every_answer_is_the_same_over_tls_with_http1_by_alpn() {
    let (twins, cert) = tls_twins().await;
    let proxied = Client::tls(
        twins.proxy.handle.addr(),
        Version::Http1,
        &cert.client_config(),
        "localhost",
    );
    assert_table_transparent(&direct_behind_tls(&twins), &proxied).await;
    twins.stop().await;
}

#[tokio::test]
async fn every_answer_is_the_same_over_tls_with_h2_by_alpn() {
    let (twins, cert) = tls_twins().await;
    let proxied = Client::tls(
        twins.proxy.handle.addr(),
        Version::Http2,
        &cert.client_config(),
        "localhost",
    );
    assert_table_transparent(&direct_behind_tls(&twins), &proxied).await;
    twins.stop().await;
}
