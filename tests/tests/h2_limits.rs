//! HTTP/2 limits and the h2 → h1 downgrade, as raw frames over TCP to the proxy's h2c
//! listener ([`wire`], a hand-written client): what the client reads back, and what reached
//! the upstream.
//!
//! - streams beyond `h2_max_concurrent_streams` are refused (`REFUSED_STREAM`) while the
//!   allowed ones complete;
//! - rapid reset (CVE-2023-44487): streams opened and reset at once end in `GOAWAY
//!   ENHANCE_YOUR_CALM`, reach no upstream, and other clients are served meanwhile;
//! - a CONTINUATION flood ends in `GOAWAY`, an oversized header list in 431, neither reaching
//!   the upstream;
//! - fields that mean something to HTTP/1.1 framing (connection-specific fields, CR/LF/NUL)
//!   are refused, so the HTTP/1.1 upstream receives exactly one well-formed request.
//!
//! README.md "Limits and hardening" has the same cases for users.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "h2_limits/downgrade.rs"]
mod downgrade;
#[path = "h2_limits/gate.rs"]
mod gate;
#[path = "h2_limits/wire.rs"]
mod wire;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use system_tests::raw_upstream::RawUpstream;
use system_tests::{Proxy, named, routes_toml};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use wire::{Conn, Frame, Read};

/// Bound on waiting for the proxy to answer or act.
const DEADLINE: Duration = Duration::from_secs(10);

/// A routes.toml for `upstream` with `listen` lines added to `[listen]`.
fn with_listen(upstream: &str, listen: &str) -> String {
    routes_toml(upstream, "").replace(
        "[listen]\naddress = \"127.0.0.1:0\"\n",
        &format!("[listen]\naddress = \"127.0.0.1:0\"\n{listen}\n"),
    )
}

/// The GOAWAY among `frames`, as (last stream id, error code).
fn goaway(frames: &[Frame]) -> Option<(u32, u32)> {
    frames.iter().find(|f| f.kind == wire::GOAWAY).map(|f| {
        let last = u32::from_be_bytes(f.payload[..4].try_into().unwrap()) & 0x7fff_ffff;
        (last, f.error_code().unwrap())
    })
}

/// Streams among `frames` reset by the server with `code`.
fn reset_with(frames: &[Frame], code: u32) -> BTreeSet<u32> {
    frames
        .iter()
        .filter(|f| f.kind == wire::RST_STREAM && f.error_code() == Some(code))
        .map(|f| f.stream)
        .collect()
}

/// Streams among `frames` whose response ended (END_STREAM on HEADERS or DATA).
fn ended(frames: &[Frame]) -> BTreeSet<u32> {
    frames
        .iter()
        .filter(|f| {
            (f.kind == wire::HEADERS || f.kind == wire::DATA) && f.flags & wire::END_STREAM != 0
        })
        .map(|f| f.stream)
        .collect()
}

/// GET `/` over a fresh h2c connection with hyper's client; the status.
async fn h2_get(addr: std::net::SocketAddr, path: &str) -> Result<u16, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://shop.example{path}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(DEADLINE, sender.send_request(request)).await;
    connection.abort();
    match answer {
        Ok(Ok(response)) => Ok(response.status().as_u16()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time".to_owned()),
    }
}

#[tokio::test]
async fn streams_over_the_limit_are_refused_while_the_allowed_ones_complete() {
    const LIMIT: u32 = 4;
    const OPENED: u32 = 10;
    let upstream = gate::start().await;
    let proxy = Proxy::start(&with_listen(
        &upstream.url(),
        &format!("h2_max_concurrent_streams = {LIMIT}"),
    ))
    .await;
    let mut conn = Conn::open(proxy.handle.addr()).await;
    // All requests in one write, before the client could have read the server's SETTINGS:
    // a client that ignores the advertised limit.
    let ids: Vec<u32> = (0..OPENED).map(|n| 2 * n + 1).collect();
    let requests: Vec<u8> = ids
        .iter()
        .flat_map(|&id| wire::get(id, &format!("/held/{id}"), &[]))
        .collect();
    assert!(conn.send(&requests).await);

    let want_refused = OPENED - LIMIT;
    let (frames, closed) = conn
        .read_until(DEADLINE, |frames| {
            reset_with(frames, wire::REFUSED_STREAM).len() >= want_refused as usize
        })
        .await;
    assert!(!closed, "the proxy closed the connection: {frames:?}");
    let advertised = frames
        .iter()
        .flat_map(Frame::settings)
        .find(|(id, _)| *id == wire::MAX_CONCURRENT_STREAMS);
    assert_eq!(
        advertised,
        Some((wire::MAX_CONCURRENT_STREAMS, LIMIT)),
        "the server's SETTINGS advertise the limit"
    );
    let refused = reset_with(&frames, wire::REFUSED_STREAM);
    let allowed: BTreeSet<u32> = ids[..LIMIT as usize].iter().copied().collect();
    let over: BTreeSet<u32> = ids[LIMIT as usize..].iter().copied().collect();
    assert_eq!(refused, over, "the streams over the limit are refused");

    // The allowed streams are at the upstream, held there; release them and read the answers.
    assert!(
        upstream.more_than(LIMIT as usize - 1, DEADLINE).await,
        "the allowed requests reach the upstream"
    );
    upstream.release();
    let (frames, closed) = conn
        .read_until(DEADLINE, |frames| ended(frames).len() >= LIMIT as usize)
        .await;
    assert!(!closed, "the proxy closed the connection: {frames:?}");
    assert_eq!(ended(&frames), allowed, "every allowed stream completes");
    let statuses: Vec<Option<u16>> = frames
        .iter()
        .filter(|f| f.kind == wire::HEADERS)
        .map(Frame::status)
        .collect();
    assert_eq!(statuses, vec![Some(200); LIMIT as usize]);
    assert_eq!(
        upstream.arrived(),
        LIMIT as usize,
        "refused streams never reach the upstream"
    );
    drop(conn);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_ends_in_goaway_and_spares_the_upstream_and_other_clients() {
    /// Streams the attacker opens and resets, in batches of `BATCH` per write.
    const STREAMS: u32 = 2_000;
    const BATCH: u32 = 100;
    let upstream = named::start("L").await;
    let proxy = Proxy::start(&routes_toml(&upstream.url(), "")).await;
    let addr = proxy.handle.addr();

    // A well-behaved client asks one request after another for as long as the attack runs.
    let stop = CancellationToken::new();
    let bystander = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut statuses = Vec::new();
            for n in 0..200 {
                statuses.push(h2_get(addr, &format!("/bystander/{n}")).await);
                if stop.is_cancelled() && n >= 5 {
                    break;
                }
            }
            statuses
        }
    });

    let mut conn = Conn::open(addr).await;
    let mut opened = 0;
    let mut id = 1;
    'attack: while opened < STREAMS {
        let batch: Vec<u8> = (0..BATCH)
            .flat_map(|n| {
                let stream = id + 2 * n;
                [
                    wire::get(stream, "/attack", &[]),
                    wire::rst_stream(stream, wire::CANCEL),
                ]
                .concat()
            })
            .collect();
        if !conn.send(&batch).await {
            break 'attack;
        }
        opened += BATCH;
        id += 2 * BATCH;
    }
    let (frames, _) = conn
        .read_until(DEADLINE, |frames| goaway(frames).is_some())
        .await;
    stop.cancel();
    let (last_stream, code) = goaway(&frames).unwrap_or_else(|| {
        panic!("no GOAWAY after {opened} streams opened and reset; read {frames:?}")
    });
    assert_eq!(code, wire::ENHANCE_YOUR_CALM, "GOAWAY names the abuse");

    let statuses = bystander.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == Ok(200)),
        "the other client was always served: {statuses:?}"
    );
    let attack_hits = upstream.hits() - statuses.len();
    assert!(
        attack_hits * 10 < opened as usize,
        "{attack_hits} of {opened} reset streams reached the upstream"
    );
    eprintln!(
        "rapid reset: {opened} streams sent, GOAWAY ENHANCE_YOUR_CALM after stream {last_stream}, \
         {attack_hits} reached the upstream, {} bystander requests served",
        statuses.len()
    );
    drop(conn);
    proxy.stop().await;
}

#[tokio::test]
async fn streams_reset_after_reaching_the_upstream_close_the_connection() {
    /// Streams the client opens at most, each reset once its request is at the upstream.
    const STREAMS: u32 = 400;
    const LIMIT: usize = 50;
    let upstream = gate::start().await;
    let proxy = Proxy::start(&with_listen(
        &upstream.url(),
        &format!("h2_max_cancelled_streams = {LIMIT}"),
    ))
    .await;
    let mut conn = Conn::open(proxy.handle.addr()).await;
    // One stream at a time, reset only once the upstream holds its request: h2's own limit
    // (streams reset before the server accepted them) never sees these, and each one costs
    // the upstream a request.
    let mut opened = 0;
    let mut seen = Vec::new();
    for n in 0..STREAMS {
        let id = 2 * n + 1;
        if !conn.send(&wire::get(id, "/held", &[])).await {
            break;
        }
        opened += 1;
        // Waits for the upstream, or for the proxy to close the connection.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let at_upstream = loop {
            tokio::select! {
                arrived = upstream.more_than(n as usize, DEADLINE) => break arrived,
                read = conn.next(deadline) => match read {
                    Read::Frame(frame) => seen.push(frame),
                    Read::Closed | Read::TimedOut => break false,
                },
            }
        };
        if !at_upstream || !conn.send(&wire::rst_stream(id, wire::CANCEL)).await {
            break;
        }
    }
    let (frames, closed) = conn.read_until(DEADLINE, |_| false).await;
    seen.extend(frames);
    let frames = seen;
    assert!(
        closed,
        "the connection is still open after {opened} streams reset; read {frames:?}"
    );
    let arrived = upstream.arrived();
    assert!(
        arrived <= LIMIT + 2,
        "{arrived} requests reached the upstream; the limit is {LIMIT} cancelled streams"
    );
    eprintln!("paced reset: closed after {opened} streams opened, {arrived} reached the upstream");
    // Another connection is served as usual.
    upstream.release();
    assert_eq!(h2_get(proxy.handle.addr(), "/after").await, Ok(200));
    drop(conn);
    proxy.stop().await;
}

#[tokio::test]
async fn a_continuation_flood_ends_in_goaway_before_the_upstream() {
    /// CONTINUATION frames the flood sends at most, one small field each.
    const FRAMES: usize = 10_000;
    let upstream = RawUpstream::start().await;
    let proxy = Proxy::start(&routes_toml(&upstream.url(), "")).await;
    let mut conn = Conn::open(proxy.handle.addr()).await;
    let first = wire::frame(
        wire::HEADERS,
        wire::END_STREAM,
        1,
        &wire::get_block("/flood", &[]),
    );
    assert!(conn.send(&first).await);
    let mut piece = Vec::new();
    wire::field(&mut piece, "x-flood", b"a");
    let continuation = wire::frame(wire::CONTINUATION, 0, 1, &piece);
    let mut sent = 0;
    while sent < FRAMES {
        let batch: Vec<u8> = continuation.repeat(500);
        if !conn.send(&batch).await {
            break;
        }
        sent += 500;
    }
    let (frames, closed) = conn
        .read_until(DEADLINE, |frames| goaway(frames).is_some())
        .await;
    let (_, code) = goaway(&frames).unwrap_or_else(|| {
        panic!("no GOAWAY (closed: {closed}) after {sent} CONTINUATION frames; read {frames:?}")
    });
    assert_eq!(code, wire::ENHANCE_YOUR_CALM, "GOAWAY names the abuse");
    assert_eq!(
        upstream.bytes_received(),
        0,
        "upstream received:\n{}",
        upstream.dump()
    );
    eprintln!("CONTINUATION flood: GOAWAY ENHANCE_YOUR_CALM after at most {sent} frames sent");
    drop(conn);
    proxy.stop().await;
}

#[tokio::test]
async fn an_oversized_header_list_gets_431_and_the_connection_goes_on() {
    let upstream = RawUpstream::start().await;
    let proxy = Proxy::start(&routes_toml(&upstream.url(), "")).await;
    let mut conn = Conn::open(proxy.handle.addr()).await;
    // 80 fields of 1 KiB: over the 64 KiB default header list, sent as HEADERS and
    // CONTINUATION frames of at most 16 KiB (the default SETTINGS_MAX_FRAME_SIZE).
    let value = vec![b'v'; 1024];
    let mut block = wire::get_block("/big", &[]);
    for n in 0..80 {
        wire::field(&mut block, &format!("x-big-{n}"), &value);
    }
    let pieces: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    let mut bytes = Vec::new();
    for (n, piece) in pieces.iter().enumerate() {
        let last = n + 1 == pieces.len();
        let end_headers = if last { wire::END_HEADERS } else { 0 };
        bytes.extend(if n == 0 {
            wire::frame(wire::HEADERS, wire::END_STREAM | end_headers, 1, piece)
        } else {
            wire::frame(wire::CONTINUATION, end_headers, 1, piece)
        });
    }
    // Then a normal request on the same connection.
    bytes.extend(wire::get(3, "/after", &[]));
    assert!(conn.send(&bytes).await);
    let (frames, closed) = conn
        .read_until(DEADLINE, |frames| ended(frames).len() >= 2)
        .await;
    assert!(!closed, "the proxy closed the connection: {frames:?}");
    let status = |stream| {
        frames
            .iter()
            .find(|f| f.kind == wire::HEADERS && f.stream == stream)
            .and_then(Frame::status)
    };
    assert_eq!(status(1), Some(431), "the oversized list; read {frames:?}");
    assert_eq!(status(3), Some(200), "the next request; read {frames:?}");
    let targets: Vec<String> = upstream.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        ["/after"],
        "only the normal request reached the upstream"
    );
    drop(conn);
    proxy.stop().await;
}
