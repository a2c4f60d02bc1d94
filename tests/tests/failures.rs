//! Upstream failures as a client sees them: each one becomes a short answer naming its cause
//! (or a cut stream), never a hang, never a duplicated write, and the proxy keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use system_tests::fake::{self, Behaviour};
use system_tests::{Proxy, named, raw_client, routes_toml};

/// Generous bound for "does not hang": far below any timeout that would otherwise fire
/// (response timeouts here are 60 s unless a test sets a short one).
const NO_HANG: Duration = Duration::from_secs(20);

/// An address nothing listens on: bound, then released.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// The proxy still answers a normal request (unmatched → the `legacy` named upstream).
async fn assert_still_serving(proxy: &Proxy) {
    let response = raw_client()
        .get(format!("{}/still/ok", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "L");
}

/// `GET /r/x` through `proxy`: the answer's head, or a panic naming `what` when it did not come
/// within [`NO_HANG`].
async fn get_r(proxy: &Proxy, what: &str) -> reqwest::Response {
    tokio::time::timeout(
        NO_HANG,
        raw_client().get(format!("{}/r/x", proxy.url())).send(),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}"))
    .unwrap()
}

/// One route `/r` whose legacy side is `upstream` (an extra `[upstreams.broken]` block).
fn one_route(legacy_url: &str, broken: &str, route_extra: &str) -> String {
    routes_toml(
        legacy_url,
        &format!(
            r#"[upstreams.broken]
{broken}

[[routes]]
id = "r"
match = {{ path = "/r/*" }}
mode = "legacy"
legacy = "broken"
{route_extra}
"#
        ),
    )
}

#[tokio::test]
async fn connection_refused_is_a_quick_502_naming_the_cause() {
    let legacy = named::start("L").await;
    let down = closed_port_url().await;
    let proxy = Proxy::start(&one_route(
        &legacy.url(),
        &format!("url = \"{down}\"\nresponse_timeout = \"60s\""),
        "",
    ))
    .await;
    let client = raw_client();

    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let response = tokio::time::timeout(
            NO_HANG,
            client
                .request(method.clone(), format!("{}/r/x", proxy.url()))
                .body("payload")
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} to a down upstream hung"))
        .unwrap();
        assert_eq!(response.status(), 502, "{method}");
        assert_eq!(
            response.headers()["x-strangler-error"],
            "upstream-connect",
            "{method}"
        );
        let body = response.text().await.unwrap();
        assert!(
            !body.is_empty() && body.len() < 200,
            "{method}: body should be one short line: {body:?}"
        );
        assert!(
            !body.contains(&down[7..]),
            "{method}: the client must not see internal detail (the address): {body:?}"
        );
        assert_still_serving(&proxy).await;
    }
}

#[tokio::test]
async fn upstream_slower_than_its_response_timeout_is_a_504() {
    let legacy = named::start("L").await;
    let hang = fake::start(Behaviour::Hang).await;
    let proxy = Proxy::start(&one_route(
        &legacy.url(),
        &format!("url = \"{}\"\nresponse_timeout = \"300ms\"", hang.url()),
        "",
    ))
    .await;

    let response = get_r(
        &proxy,
        "the proxy waited past the upstream's response_timeout",
    )
    .await;
    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()["x-strangler-error"], "upstream-timeout");
    let body = response.text().await.unwrap();
    assert!(!body.is_empty() && body.len() < 200, "{body:?}");
    assert_eq!(hang.count(), 1, "the hanging upstream got the request once");
    assert_still_serving(&proxy).await;
}

/// Gets `/r/x` through a proxy whose route `/r` goes to an upstream behaving as `behaviour`,
/// whose answer starts (200) and then breaks off; returns what reading the body gave, after
/// checking that the client was not left waiting and that the proxy still serves.
async fn body_of_a_broken_answer(behaviour: Behaviour) -> reqwest::Result<bytes::Bytes> {
    let legacy = named::start("L").await;
    let broken = fake::start(behaviour).await;
    let proxy = Proxy::start(&one_route(
        &legacy.url(),
        &format!("url = \"{}\"", broken.url()),
        "",
    ))
    .await;
    let response = get_r(&proxy, "no response head").await;
    // The head was already on its way; what matters is that the client learns the body is
    // incomplete instead of waiting for bytes that never come.
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(NO_HANG, response.bytes())
        .await
        .expect("the client hung on a broken body");
    assert_still_serving(&proxy).await;
    body
}

#[tokio::test]
async fn upstream_closing_mid_body_cuts_the_client_stream() {
    // 100 000 bytes announced, 1 000 sent.
    match body_of_a_broken_answer(Behaviour::CloseMidBody).await {
        Err(_) => {}
        Ok(bytes) => assert!(
            bytes.len() < 100_000,
            "a cut upstream body reached the client as complete ({} bytes)",
            bytes.len()
        ),
    }
}

/// What an upstream may answer that cannot be relayed as it is: each is refused by the
/// proxy's own HTTP/1.1 client (`forward/h1.rs`) with a 502, never passed on half-read.
const MALFORMED_ANSWERS: [(&str, &[u8]); 7] = [
    (
        "two differing Content-Length fields",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
    ),
    (
        "Content-Length in hex",
        b"HTTP/1.1 200 OK\r\ncontent-length: 0x3\r\n\r\nabc",
    ),
    (
        "Transfer-Encoding in HTTP/1.0",
        b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ),
    ("not HTTP at all", b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
    (
        "obs-fold in a field",
        b"HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\ncontent-length: 0\r\n\r\n",
    ),
    (
        "a status code of two digits",
        b"HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n",
    ),
    (
        "a space before the colon",
        b"HTTP/1.1 200 OK\r\ncontent-length : 3\r\n\r\nabc",
    ),
];

#[tokio::test]
async fn a_malformed_upstream_answer_is_a_502_and_the_proxy_keeps_serving() {
    let legacy = named::start("L").await;
    for (case, answer) in MALFORMED_ANSWERS {
        let broken = fake::start(Behaviour::Raw(answer)).await;
        let proxy = Proxy::start(&one_route(
            &legacy.url(),
            &format!("url = \"{}\"", broken.url()),
            "",
        ))
        .await;
        let response = get_r(&proxy, &format!("{case}: hung")).await;
        assert_eq!(response.status(), 502, "{case}");
        assert_eq!(
            response.headers()["x-strangler-error"],
            "upstream-failed",
            "{case}"
        );
        assert_still_serving(&proxy).await;
    }
}

#[tokio::test]
async fn a_chunked_answer_broken_mid_body_cuts_the_client_stream() {
    let body = body_of_a_broken_answer(Behaviour::Raw(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    ))
    .await;
    assert!(
        body.is_err(),
        "a broken chunked body reached the client as complete: {body:?}"
    );
}

#[tokio::test]
async fn upstream_closing_without_answer_is_a_502_and_never_retried() {
    let legacy = named::start("L").await;
    let closing = fake::start(Behaviour::CloseImmediately).await;
    let proxy = Proxy::start(&one_route(
        &legacy.url(),
        &format!("url = \"{}\"", closing.url()),
        "",
    ))
    .await;
    let client = raw_client();

    // The request reached the upstream, so no method may be sent again: not the POST (a write),
    // and not the GET either (only connect failures are retried).
    for (i, method) in [reqwest::Method::POST, reqwest::Method::GET]
        .into_iter()
        .enumerate()
    {
        let response = tokio::time::timeout(
            NO_HANG,
            client
                .request(method.clone(), format!("{}/r/order", proxy.url()))
                .body("{}")
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} hung"))
        .unwrap();
        assert_eq!(response.status(), 502, "{method}");
        assert_eq!(
            response.headers()["x-strangler-error"],
            "upstream-failed",
            "{method}"
        );
        assert_eq!(
            closing.count(),
            i + 1,
            "{method} reached the upstream {} times",
            closing.count() - i
        );
        assert_still_serving(&proxy).await;
    }
}

#[tokio::test]
async fn body_over_the_route_limit_is_413_and_never_reaches_the_upstream() {
    let legacy = named::start("L").await;
    let upload = named::start("U").await;
    let proxy = Proxy::start(&one_route(
        &legacy.url(),
        &format!("url = \"{}\"", upload.url()),
        "max_request_body = \"1KiB\"",
    ))
    .await;
    let client = raw_client();
    let url = format!("{}/r/upload", proxy.url());

    // Declared length over the limit.
    let response = client
        .post(&url)
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["x-strangler-error"], "body-too-large");

    // No declared length (chunked): the proxy has to count.
    let chunks = futures_util::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 1024]))),
    );
    let response = client
        .post(&url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["x-strangler-error"], "body-too-large");

    assert_eq!(
        upload.hits(),
        0,
        "a request refused for its size reached the upstream"
    );
    assert_eq!(upload.body_bytes(), 0);

    // Within the limit, the same route works, and other routes are unaffected.
    let response = client
        .post(&url)
        .body(vec![b'z'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "U");
    assert_eq!(upload.body_bytes(), 1000);
    assert_still_serving(&proxy).await;
}

#[tokio::test]
async fn streamed_body_over_the_route_limit_is_413() {
    let legacy = named::start("L").await;
    let upload = named::start("U").await;
    // Over 64 KiB, a body streams: the upstream may see the head, but never more than the
    // limit, and the client learns why (413, not a generic 502).
    let proxy = Proxy::start(&one_route(
        &legacy.url(),
        &format!("url = \"{}\"", upload.url()),
        "max_request_body = \"100KiB\"",
    ))
    .await;
    let chunks = futures_util::stream::iter(
        (0..16).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 16 * 1024]))),
    );
    let response = tokio::time::timeout(
        NO_HANG,
        raw_client()
            .post(format!("{}/r/upload", proxy.url()))
            .body(reqwest::Body::wrap_stream(chunks))
            .send(),
    )
    .await
    .expect("an over-limit streamed upload hung")
    .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["x-strangler-error"], "body-too-large");
    assert!(
        upload.body_bytes() <= 100 * 1024,
        "{} bytes reached the upstream",
        upload.body_bytes()
    );
    assert_still_serving(&proxy).await;
}
