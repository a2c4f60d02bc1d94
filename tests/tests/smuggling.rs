//! Request smuggling and malformed requests, as raw bytes over TCP (RFC 9112 §6.1, §6.3, §11).
//!
//! Each case sends exact bytes to the proxy and checks two things: the client's answers
//! (status lines, and that the connection was closed where the case demands it), and what
//! reached the upstream, a raw recorder: nothing at all, or exactly one well-formed request.
//! The table's comments say which layer refuses each case (httparse, hyper, or strangler's
//! guard and raw head scan), as measured against a bare hyper 1.x server; README.md
//! "Limits and hardening" has the same table for users.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use system_tests::raw_upstream::RawUpstream;
use system_tests::{Proxy, routes_toml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on one case's exchange; a hang fails the case instead of the whole run.
const DEADLINE: Duration = Duration::from_secs(10);

/// What reaches the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    /// Not a byte.
    Nothing,
    /// Exactly one request, strictly well-formed, whose target is this.
    One(&'static str),
}

/// One row: bytes in; the statuses the client reads, in order; whether the proxy must close
/// the connection after them; what the upstream receives.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    statuses: &'static [u16],
    closed: bool,
    upstream: Upstream,
}

fn refused(name: &'static str, bytes: impl Into<Vec<u8>>, status: u16) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        statuses: match status {
            400 => &[400],
            414 => &[414],
            431 => &[431],
            other => panic!("add status {other} to the table helper"),
        },
        closed: true,
        upstream: Upstream::Nothing,
    }
}

fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /p HTTP/1.1\r\nHost: shop.example\r\n{headers}\r\n{body}").into_bytes()
}

fn cases() -> Vec<Case> {
    let long_target = format!(
        "GET /{} HTTP/1.1\r\nHost: shop.example\r\n\r\n",
        "a".repeat(10 * 1024)
    );
    let big_headers = format!(
        "GET / HTTP/1.1\r\nHost: shop.example\r\nX-Big: {}\r\n\r\n",
        "b".repeat(70 * 1024)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: shop.example\r\n{}\r\n",
        (0..120)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    vec![
        // --- Content-Length and Transfer-Encoding together. hyper alone: 200 (chunked wins, the
        // connection closes after). strangler: 400 from the raw head scan. ---
        refused(
            "CL then TE",
            post(
                "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\nG",
            ),
            400,
        ),
        refused(
            "TE then CL",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
                "0\r\n\r\nG",
            ),
            400,
        ),
        refused(
            "CL, TE, CL: the TE.CL classic",
            post(
                "Content-Length: 4\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                "47\r\nGPOST /smuggled HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n",
            ),
            400,
        ),
        // --- Content-Length on its own: hyper refuses all of these (the guard would too). ---
        refused(
            "two differing Content-Length fields",
            post("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
            400,
        ),
        refused(
            "Content-Length list of differing values",
            post("Content-Length: 1, 2\r\n", "ab"),
            400,
        ),
        refused(
            "Content-Length list of equal values",
            post("Content-Length: 2, 2\r\n", "ab"),
            400,
        ),
        refused(
            "Content-Length with a sign",
            post("Content-Length: +2\r\n", "ab"),
            400,
        ),
        refused(
            "Content-Length in hex",
            post("Content-Length: 0x2\r\n", "ab"),
            400,
        ),
        // --- Transfer-Encoding. hyper refuses a last coding other than chunked, control bytes and
        // HTTP/1.0; it accepts the rest, which the guard (codings, two fields) and the raw head
        // scan (whitespace around the value) refuse. ---
        refused(
            "TE whose last coding is not chunked",
            post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"),
            400,
        ),
        refused(
            "TE with a coding before chunked",
            post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
            400,
        ),
        refused(
            "TE chunked, chunked",
            post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
            400,
        ),
        refused(
            "TE in two fields",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "TE xchunked",
            post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"),
            400,
        ),
        refused(
            "TE with a tab before the value",
            post("Transfer-Encoding: \tchunked\r\n", "0\r\n\r\n"),
            400,
        ),
        refused(
            "TE with a space after the value",
            post("Transfer-Encoding: chunked \r\n", "0\r\n\r\n"),
            400,
        ),
        refused(
            "TE with a vertical tab",
            post("Transfer-Encoding:\x0bchunked\r\n", "0\r\n\r\n"),
            400,
        ),
        refused(
            "TE in HTTP/1.0",
            "POST /p HTTP/1.0\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        // --- chunked bodies: hyper's decoder fails the body, and the proxy, reading small bodies
        // whole first, answers 400 before forwarding. Control bytes in an extension hyper
        // accepts; the raw scan turns them into a bare LF, which hyper's decoder refuses. ---
        refused(
            "chunk size not hex",
            post("Transfer-Encoding: chunked\r\n", "zz\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "chunk size overflowing 64 bits",
            post(
                "Transfer-Encoding: chunked\r\n",
                "10000000000000001\r\na\r\n0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "chunk size with a sign",
            post("Transfer-Encoding: chunked\r\n", "+3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "chunk data longer than its size",
            post("Transfer-Encoding: chunked\r\n", "3\r\nabcdef\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "chunk extension with a control byte",
            post(
                "Transfer-Encoding: chunked\r\n",
                "3;x=\x01\r\nabc\r\n0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "chunk size line ended by a bare LF",
            post("Transfer-Encoding: chunked\r\n", "3\nabc\r\n0\r\n\r\n"),
            400,
        ),
        // --- field syntax: httparse refuses all of these. ---
        refused(
            "obs-fold",
            post("X-Folded: a\r\n b\r\nContent-Length: 0\r\n", ""),
            400,
        ),
        refused(
            "whitespace before the colon",
            post("Content-Length : 0\r\n", ""),
            400,
        ),
        refused(
            "space inside a field name",
            post("X Name: v\r\nContent-Length: 0\r\n", ""),
            400,
        ),
        refused(
            "NUL in a field value",
            post("X-Nul: a\0b\r\nContent-Length: 0\r\n", ""),
            400,
        ),
        refused(
            "bare CR in a field value",
            post("X-Cr: a\rb\r\nContent-Length: 0\r\n", ""),
            400,
        ),
        // httparse reads a bare LF as the end of a field line (RFC 9112 §2.2 allows it), so a
        // Transfer-Encoding hidden behind one is seen, and with Content-Length refused; an
        // upstream reading the LF as part of the value would have seen Content-Length alone.
        refused(
            "bare LF in a field value, the rest a Transfer-Encoding line",
            post(
                "X-Lf: a\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "0\r\n\r\nG",
            ),
            400,
        ),
        // A bare LF followed by text without a colon: not a field line.
        refused(
            "bare LF inside a field value",
            post("X-Lf: a\nb\r\nContent-Length: 0\r\n", ""),
            400,
        ),
        // --- request line: httparse refuses bad tokens and versions; hyper accepts every target
        // form below and Host problems, which the guard and the handler's request filter refuse. ---
        refused(
            "invalid method token",
            "G@T / HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            400,
        ),
        refused(
            "unknown HTTP version",
            "GET / HTTP/1.2\r\nHost: shop.example\r\n\r\n",
            400,
        ),
        refused(
            "target not starting with a slash",
            "GET p HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            400,
        ),
        refused(
            "asterisk target with GET",
            "GET * HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            400,
        ),
        refused(
            "absolute-form whose authority is not Host",
            "GET http://other.example/p HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            400,
        ),
        refused(
            "absolute-form with a scheme other than http(s)",
            "GET ftp://shop.example/p HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            400,
        ),
        refused(
            "CONNECT (authority-form)",
            "CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\n\r\n",
            400,
        ),
        refused("HTTP/1.1 without Host", "GET /p HTTP/1.1\r\n\r\n", 400),
        refused(
            "two Host fields",
            "GET /p HTTP/1.1\r\nHost: shop.example\r\nHost: other.example\r\n\r\n",
            400,
        ),
        // --- sizes: hyper answers 431 (max_buf_size, max_headers); the guard answers 414. ---
        refused("request target over 8 KiB", long_target, 414),
        refused("request head over 64 KiB", big_headers, 431),
        refused("more than 100 header fields", many_headers, 431),
        // --- what must pass, exactly once ---
        Case {
            name: "a request hidden in a Content-Length body stays body",
            bytes: post(
                "Content-Length: 46\r\n",
                "GET /smuggled HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            ),
            statuses: &[200],
            closed: false,
            upstream: Upstream::One("/p"),
        },
        Case {
            name: "a request hidden in a chunked body stays body",
            bytes: post(
                "Transfer-Encoding: chunked\r\n",
                "2e\r\nGET /smuggled HTTP/1.1\r\nHost: shop.example\r\n\r\n\r\n0\r\n\r\n",
            ),
            statuses: &[200],
            closed: false,
            upstream: Upstream::One("/p"),
        },
        Case {
            name: "bare LF line endings are read as line ends and re-framed with CRLF",
            bytes: b"GET /p HTTP/1.1\nHost: shop.example\nX-A: b\n\n".to_vec(),
            statuses: &[200],
            closed: false,
            upstream: Upstream::One("/p"),
        },
        Case {
            name: "absolute-form naming Host is served in origin-form",
            bytes: b"GET http://shop.example/p HTTP/1.1\r\nHost: shop.example\r\n\r\n".to_vec(),
            statuses: &[200],
            closed: false,
            upstream: Upstream::One("/p"),
        },
        Case {
            name: "a valid request, then an ambiguous one on the same connection",
            bytes: [
                b"GET /p HTTP/1.1\r\nHost: shop.example\r\n\r\n".to_vec(),
                post(
                    "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                    "0\r\n\r\nG",
                ),
            ]
            .concat(),
            statuses: &[200, 400],
            closed: true,
            upstream: Upstream::One("/p"),
        },
        Case {
            name: "bytes after a Content-Length body are a new (broken) request",
            bytes: post("Content-Length: 2\r\n", "abGARBAGE\r\n\r\n"),
            statuses: &[200, 400],
            closed: true,
            upstream: Upstream::One("/p"),
        },
    ]
}

/// Sends `bytes`, then reads answers until `want` responses have arrived (and, when `closed`,
/// until the proxy closes). Returns the statuses read and whether the connection closed.
async fn exchange(proxy: &Proxy, bytes: &[u8], want: usize, closed: bool) -> (Vec<u16>, bool) {
    let mut socket = TcpStream::connect(proxy.handle.addr()).await.unwrap();
    // The proxy may refuse before reading everything; a failed write is part of the answer.
    let _ = socket.write_all(bytes).await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let give_up = tokio::time::Instant::now() + DEADLINE;
    let mut eof = false;
    loop {
        let statuses = statuses(&buf);
        if statuses.len() >= want && (!closed || eof) {
            return (statuses, eof);
        }
        if eof {
            return (statuses, eof);
        }
        match tokio::time::timeout_at(give_up, socket.read(&mut chunk)).await {
            Err(_) => return (statuses, false),
            Ok(Ok(0)) | Ok(Err(_)) => eof = true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The status of each complete response in `buf` (bodies framed by Content-Length).
fn statuses(mut buf: &[u8]) -> Vec<u16> {
    let mut found = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = response.parse(buf) else {
            return found;
        };
        let length: usize = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .unwrap_or(0);
        if buf.len() < head + length {
            return found;
        }
        found.push(response.code.unwrap_or(0));
        buf = &buf[head + length..];
    }
}

#[tokio::test]
async fn ambiguous_and_malformed_requests_never_reach_the_upstream() {
    let table = cases();
    assert!(table.len() >= 25, "the issue asks for at least 25 cases");
    let mut failures = Vec::new();
    for case in table {
        let upstream = RawUpstream::start().await;
        let proxy = Proxy::start(&routes_toml(&upstream.url(), "")).await;
        let (got, eof) = exchange(&proxy, &case.bytes, case.statuses.len(), case.closed).await;
        let mut wrong = Vec::new();
        if got != case.statuses {
            wrong.push(format!("client got {got:?}, want {:?}", case.statuses));
        }
        if case.closed && !eof {
            wrong.push("connection left open".to_owned());
        }
        let requests = upstream.requests();
        match case.upstream {
            Upstream::Nothing => {
                if upstream.bytes_received() != 0 {
                    wrong.push(format!("upstream received:\n{}", upstream.dump()));
                }
            }
            Upstream::One(target) => {
                let targets: Vec<&str> = requests.iter().map(|r| r.target.as_str()).collect();
                if targets != [target] || !upstream.broken().is_empty() {
                    wrong.push(format!(
                        "upstream read {targets:?} (broken: {:?}), want exactly [{target:?}]:\n{}",
                        upstream.broken(),
                        upstream.dump()
                    ));
                }
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
        proxy.stop().await;
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `[listen] max_headers` other than hyper's default of 100 is enforced both ways: a head
/// over a lower limit is refused before the upstream, and a higher one lets more through.
#[tokio::test]
async fn max_headers_other_than_the_default_is_enforced() {
    let head = |fields: usize| {
        format!(
            "GET /p HTTP/1.1\r\nHost: shop.example\r\n{}\r\n",
            (1..fields)
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect::<String>()
        )
    };
    for (limit, fields, status, reached) in [
        (20, 20, 200, 1),
        (20, 21, 431, 0),
        (150, 120, 200, 1),
        (150, 151, 431, 0),
    ] {
        let upstream = RawUpstream::start().await;
        let config = routes_toml(&upstream.url(), "")
            .replace("[listen]\n", &format!("[listen]\nmax_headers = {limit}\n"));
        let proxy = Proxy::start(&config).await;
        let (got, _) = exchange(&proxy, head(fields).as_bytes(), 1, false).await;
        assert_eq!(got, [status], "{fields} fields with max_headers = {limit}");
        assert_eq!(
            upstream.requests().len(),
            reached,
            "{fields} fields with max_headers = {limit}: requests at the upstream"
        );
        proxy.stop().await;
    }
}
