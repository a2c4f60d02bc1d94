//! h2 → h1 downgrade: an HTTP/2 request is forwarded to an HTTP/1.1 upstream, where CR, LF,
//! a connection-specific field or a second body framing could start a second request. Each
//! case sends one request on a fresh connection and checks the client's answer and that the
//! upstream (a raw recorder) received nothing, or exactly one well-formed request.

use system_tests::raw_upstream::RawUpstream;
use system_tests::{Proxy, routes_toml};

use super::wire::{self, Conn, Frame};
use super::{DEADLINE, goaway};

/// What the client reads back for stream 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A response with this status.
    Status(u16),
    /// RST_STREAM on stream 1 with this code; the connection stays usable.
    StreamError(u32),
    /// GOAWAY with this code: the whole connection is refused.
    ConnectionError(u32),
}

/// What the upstream receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    /// Not a byte.
    Nothing,
    /// Exactly one well-formed request with this target and body.
    One(&'static str, &'static [u8]),
}

struct Case {
    name: &'static str,
    /// Frames for stream 1.
    bytes: Vec<u8>,
    answer: Answer,
    upstream: Upstream,
}

/// A second request, as an HTTP/1.1 upstream would read it if it got through.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: shop.example\r\n\r\n";

fn get_with(name: &'static str, field: &'static str, value: &'static [u8], answer: Answer) -> Case {
    Case {
        name,
        bytes: wire::get(1, "/p", &[(field, value)]),
        answer,
        upstream: Upstream::Nothing,
    }
}

/// A POST on stream 1 with `fields`, then `body` in one DATA frame that ends the stream.
fn post(fields: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    [
        wire::frame(
            wire::HEADERS,
            wire::END_HEADERS,
            1,
            &wire::block("POST", "/p", fields),
        ),
        wire::frame(wire::DATA, wire::END_STREAM, 1, body),
    ]
    .concat()
}

fn cases() -> Vec<Case> {
    use Answer::{ConnectionError, Status, StreamError};
    let malformed = StreamError(wire::PROTOCOL_ERROR);
    let smuggling_body = [b"abc".as_slice(), SMUGGLED].concat();
    vec![
        // --- connection-specific fields (RFC 9113 §8.2.2): h2 treats the request as malformed. ---
        get_with("connection", "connection", b"keep-alive", malformed),
        get_with("keep-alive", "keep-alive", b"timeout=5", malformed),
        get_with(
            "proxy-connection",
            "proxy-connection",
            b"keep-alive",
            malformed,
        ),
        get_with("upgrade", "upgrade", b"websocket", malformed),
        get_with("te other than trailers", "te", b"gzip", malformed),
        Case {
            name: "transfer-encoding with a chunked body hiding a request",
            bytes: post(
                &[("transfer-encoding", b"chunked")],
                &[b"0\r\n\r\n".as_slice(), SMUGGLED].concat(),
            ),
            answer: malformed,
            upstream: Upstream::Nothing,
        },
        // --- CR, LF, NUL: not a valid field value or name; HPACK decoding fails, which is a
        // connection error (the decoder's state can no longer be trusted). ---
        get_with(
            "CRLF and a second request in a field value",
            "x-inject",
            b"a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shop.example",
            ConnectionError(wire::PROTOCOL_ERROR),
        ),
        get_with(
            "bare LF in a field value",
            "x-inject",
            b"a\nb",
            ConnectionError(wire::PROTOCOL_ERROR),
        ),
        get_with(
            "bare CR in a field value",
            "x-inject",
            b"a\rb",
            ConnectionError(wire::PROTOCOL_ERROR),
        ),
        get_with(
            "NUL in a field value",
            "x-inject",
            b"a\0b",
            ConnectionError(wire::PROTOCOL_ERROR),
        ),
        get_with(
            "CRLF in the host field",
            "host",
            b"shop.example\r\nX-Evil: 1",
            ConnectionError(wire::PROTOCOL_ERROR),
        ),
        get_with(
            "CRLF in a field name",
            "x-a\r\ntransfer-encoding",
            b"chunked",
            ConnectionError(wire::PROTOCOL_ERROR),
        ),
        // --- pseudo-header fields that would become the HTTP/1.1 request line. ---
        get_with(
            "CRLF and a request in :path",
            ":path",
            b"/a HTTP/1.1\r\nHost: shop.example\r\n\r\nGET /smuggled",
            malformed,
        ),
        get_with("space in :path", ":path", b"/a b", malformed),
        get_with(
            "CRLF in :authority",
            ":authority",
            b"shop.example\r\nX-Evil: 1",
            malformed,
        ),
        get_with(
            "a request line in :method (fails HPACK decoding: not a token)",
            ":method",
            b"GET /x HTTP/1.1\r\n",
            ConnectionError(wire::PROTOCOL_ERROR),
        ),
        // --- body framing: DATA must match content-length (RFC 9113 §8.1.1). ---
        Case {
            name: "DATA longer than content-length, the rest a request",
            bytes: post(&[("content-length", b"3")], &smuggling_body),
            answer: malformed,
            upstream: Upstream::Nothing,
        },
        // --- what must pass, exactly once ---
        Case {
            name: "te: trailers is allowed",
            bytes: wire::get(1, "/p", &[("te", b"trailers")]),
            answer: Status(200),
            upstream: Upstream::One("/p", b""),
        },
        Case {
            name: "a request inside an unsized body stays body",
            bytes: post(&[], SMUGGLED),
            answer: Status(200),
            upstream: Upstream::One("/p", SMUGGLED),
        },
    ]
}

/// Reads until stream 1 is answered, reset, or the connection refused.
async fn answer(conn: &mut Conn) -> (Option<Answer>, Vec<Frame>) {
    let (frames, _closed) = conn
        .read_until(DEADLINE, |frames| {
            frames.iter().any(|f| {
                f.stream == 1
                    && (f.kind == wire::RST_STREAM
                        || (f.flags & wire::END_STREAM != 0
                            && (f.kind == wire::HEADERS || f.kind == wire::DATA)))
            }) || goaway(frames).is_some()
        })
        .await;
    let on_stream = frames.iter().find_map(|f| match f.kind {
        wire::RST_STREAM if f.stream == 1 => f.error_code().map(Answer::StreamError),
        wire::HEADERS if f.stream == 1 => f.status().map(Answer::Status),
        _ => None,
    });
    let answer =
        on_stream.or_else(|| goaway(&frames).map(|(_, code)| Answer::ConnectionError(code)));
    (answer, frames)
}

#[tokio::test]
async fn h2_fields_that_could_smuggle_on_http1_never_reach_the_upstream() {
    let mut failures = Vec::new();
    for case in cases() {
        let upstream = RawUpstream::start().await;
        let proxy = Proxy::start(&routes_toml(&upstream.url(), "")).await;
        let mut conn = Conn::open(proxy.handle.addr()).await;
        let mut wrong = Vec::new();
        if !conn.send(&case.bytes).await {
            wrong.push("the proxy closed before reading the request".to_owned());
        }
        let (got, frames) = answer(&mut conn).await;
        if got != Some(case.answer) {
            wrong.push(format!(
                "client got {got:?}, want {:?} (frames: {frames:?})",
                case.answer
            ));
        }
        match case.upstream {
            Upstream::Nothing => {
                if upstream.bytes_received() != 0 {
                    wrong.push(format!("upstream received:\n{}", upstream.dump()));
                }
            }
            Upstream::One(target, body) => {
                let requests = upstream.requests();
                let seen: Vec<(&str, &[u8])> = requests
                    .iter()
                    .map(|r| (r.target.as_str(), r.body.as_slice()))
                    .collect();
                if seen != [(target, body)] || !upstream.broken().is_empty() {
                    wrong.push(format!(
                        "upstream read {seen:?} (broken: {:?}), want exactly one {target:?}:\n{}",
                        upstream.broken(),
                        upstream.dump()
                    ));
                }
                let hop_by_hop: Vec<&String> = requests
                    .iter()
                    .flat_map(|r| r.headers.iter().map(|(n, _)| n))
                    .filter(|n| {
                        [
                            "connection",
                            "keep-alive",
                            "proxy-connection",
                            "te",
                            "transfer-encoding",
                            "upgrade",
                        ]
                        .contains(&n.as_str())
                    })
                    .collect();
                if !hop_by_hop.is_empty() {
                    wrong.push(format!(
                        "upstream got connection-specific fields {hop_by_hop:?}"
                    ));
                }
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
        // Closed first: an open client connection would hold the proxy's drain.
        drop(conn);
        proxy.stop().await;
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
