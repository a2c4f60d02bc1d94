//! Slow and quiet clients: slowloris heads, stalled bodies, idle keep-alive connections.
//!
//! Each test states which timer it exercises and sets that timer short; the others stay long
//! so they cannot be what closed the connection. Waiting for a timer to pass is the scenario
//! itself, so those tests sleep past it; nothing asserts on how long anything took.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use system_tests::raw_upstream::RawUpstream;
use system_tests::{Proxy, named, raw_client, routes_toml, wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Bound on waiting for the proxy to act on a short timer.
const DEADLINE: Duration = Duration::from_secs(15);

/// A routes.toml for `upstream` with `listen` lines added to `[listen]`.
fn with_listen(upstream: &str, listen: &str) -> String {
    routes_toml(upstream, "").replace(
        "[listen]\naddress = \"127.0.0.1:0\"\n",
        &format!("[listen]\naddress = \"127.0.0.1:0\"\n{listen}\n"),
    )
}

/// This process's open-file limits (soft, hard), from `/proc/self/limits`.
fn fd_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("an open-files line in /proc/self/limits");
    let mut numbers = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// Raises this process's soft open-file limit to `want` (or the hard limit, if lower) with
/// util-linux `prlimit` (this workspace forbids `unsafe`, so no `setrlimit` call here).
fn raise_fd_limit(want: u64) -> u64 {
    let (soft, hard) = fd_limits();
    if soft < want {
        let target = want.min(hard);
        let status = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={target}:{hard}"))
            .status()
            .expect("run prlimit (util-linux) to raise the open-file limit");
        assert!(status.success(), "prlimit failed: {status}");
    }
    fd_limits().0
}

/// Reads until the proxy closes the connection; returns what it sent, or `None` if it
/// was still open at the deadline.
async fn read_to_close(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    let give_up = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(give_up, socket.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(all),
            Ok(Ok(n)) => all.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the proxy has closed `socket` (a read would not block).
fn closed(socket: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    !matches!(socket.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// A GET that any upstream answers.
const GET: &[u8] = b"GET /again HTTP/1.1\r\nHost: shop.example\r\n\r\n";

/// Sends a GET on an open connection and reads its answer; returns the status.
async fn get_on(socket: &mut TcpStream) -> u16 {
    socket.write_all(GET).await.unwrap();
    read_answer(socket).await
}

/// Reads one response head with its Content-Length body; returns the status.
async fn read_answer(socket: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = response.parse(&buf) {
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            if buf.len() >= head + length {
                return response.code.unwrap();
            }
        }
        let n = tokio::time::timeout(DEADLINE, socket.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "the proxy closed the connection instead of answering"
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_slowloris_clients_do_not_stop_normal_clients() {
    const SLOW: usize = 500;
    let limit = raise_fd_limit(8192);
    assert!(
        limit >= 2 * SLOW as u64 + 200,
        "open-file limit {limit} is too low for {SLOW} slow clients and the proxy's side of them"
    );
    let legacy = named::start("L").await;
    // Heads get 60 s: the slow clients stay connected, trickling, for the whole test.
    let proxy = Proxy::start(&with_listen(&legacy.url(), "header_read_timeout = \"60s\"")).await;
    let stop = CancellationToken::new();
    let mut slow = JoinSet::new();
    let mut connected = Vec::new();
    for _ in 0..SLOW {
        connected.push(TcpStream::connect(proxy.handle.addr()).await.unwrap());
    }
    for mut socket in connected {
        let stop = stop.clone();
        slow.spawn(async move {
            let head = b"GET /slow HTTP/1.1\r\nHost: shop.example\r\nX-Trickle: ";
            let mut sent = 0usize;
            loop {
                let byte = head.get(sent).copied().unwrap_or(b'a');
                if socket.write_all(&[byte]).await.is_err() {
                    return (sent, socket);
                }
                sent += 1;
                tokio::select! {
                    () = stop.cancelled() => return (sent, socket),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }
    // Let every slow client trickle a few bytes, then serve normal clients among them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let client = raw_client();
    let mut normal = JoinSet::new();
    for i in 0..50 {
        let client = client.clone();
        let url = format!("{}/normal/{i}", proxy.url());
        normal.spawn(async move {
            let response = tokio::time::timeout(DEADLINE, client.get(url).send())
                .await
                .expect("a normal request answered in time")
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        });
    }
    while let Some(answer) = normal.join_next().await {
        assert_eq!(answer.unwrap(), (200, "L".to_owned()));
    }
    stop.cancel();
    let mut still_open = 0;
    while let Some(joined) = slow.join_next().await {
        let (sent, socket) = joined.unwrap();
        assert!(sent >= 2, "a slow client could not trickle its head");
        if !closed(&socket) {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, SLOW,
        "the slow clients were still within header_read_timeout; none should have been cut"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_head_trickled_past_header_read_timeout_is_cut_off() {
    let legacy = named::start("L").await;
    let proxy = Proxy::start(&with_listen(
        &legacy.url(),
        "header_read_timeout = \"1s\"\nidle_timeout = \"60s\"",
    ))
    .await;
    let mut socket = TcpStream::connect(proxy.handle.addr()).await.unwrap();
    let trickle = async {
        for byte in b"GET / HTTP/1.1\r\nHost: shop.example\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if socket.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // Bytes keep moving, so only the head timer can close it.
    let _ = tokio::time::timeout(DEADLINE, trickle).await;
    assert!(
        read_to_close(&mut socket).await.is_some(),
        "the proxy kept a trickling head open"
    );
    assert_eq!(legacy.hits(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_header_read_timeout_until_idle_timeout() {
    let legacy = named::start("L").await;
    let proxy = Proxy::start(&with_listen(
        &legacy.url(),
        "header_read_timeout = \"300ms\"\nidle_timeout = \"3s\"",
    ))
    .await;
    let mut socket = TcpStream::connect(proxy.handle.addr()).await.unwrap();
    assert_eq!(get_on(&mut socket).await, 200);
    // Quiet for longer than a head may take, shorter than idle: still open.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!closed(&socket), "closed by the header timer while idle");
    assert_eq!(get_on(&mut socket).await, 200);
    // Quiet past idle_timeout: closed.
    assert!(
        read_to_close(&mut socket).await.is_some(),
        "an idle keep-alive connection stayed open past idle_timeout"
    );
    assert_eq!(legacy.hits(), 2);
    proxy.stop().await;
}

#[tokio::test]
async fn a_stalled_small_body_gets_408_and_never_reaches_the_upstream() {
    let upstream = RawUpstream::start().await;
    let proxy = Proxy::start(&with_listen(
        &upstream.url(),
        "body_read_timeout = \"1s\"\nidle_timeout = \"60s\"",
    ))
    .await;
    let mut socket = TcpStream::connect(proxy.handle.addr()).await.unwrap();
    socket
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut socket)
        .await
        .expect("the proxy kept a stalled body open");
    assert!(
        answer.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(upstream.bytes_received(), 0, "{}", upstream.dump());
    proxy.stop().await;
}

#[tokio::test]
async fn a_stalled_large_body_gets_408_and_the_upstream_request_is_aborted() {
    let upstream = RawUpstream::start().await;
    let proxy = Proxy::start(&with_listen(
        &upstream.url(),
        "body_read_timeout = \"1s\"\nidle_timeout = \"60s\"",
    ))
    .await;
    let mut socket = TcpStream::connect(proxy.handle.addr()).await.unwrap();
    // More than the 64 KiB the proxy reads ahead, so the upstream request has started.
    socket
        .write_all(b"POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 300000\r\n\r\n")
        .await
        .unwrap();
    socket.write_all(&vec![b'x'; 100 * 1024]).await.unwrap();
    let answer = read_to_close(&mut socket)
        .await
        .expect("the proxy kept a stalled body open");
    assert!(
        answer.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    wait::until("the upstream sees its request cut short", DEADLINE, || {
        !upstream.broken().is_empty()
    })
    .await;
    assert!(upstream.requests().is_empty(), "{}", upstream.dump());
    assert!(
        upstream.broken()[0].contains("left over at close"),
        "{:?}",
        upstream.broken()
    );
    proxy.stop().await;
}

#[tokio::test]
async fn at_max_connections_a_new_client_waits_until_a_slot_frees() {
    const CAP: usize = 4;
    let legacy = named::start("L").await;
    let proxy = Proxy::start(&with_listen(
        &legacy.url(),
        &format!("max_connections = {CAP}\nidle_timeout = \"60s\""),
    ))
    .await;
    let mut open = Vec::new();
    for _ in 0..CAP {
        let mut socket = TcpStream::connect(proxy.handle.addr()).await.unwrap();
        assert_eq!(get_on(&mut socket).await, 200);
        open.push(socket);
    }
    // One more: the kernel completes its handshake (the accept backlog), the proxy does not
    // accept it, so its request waits unread instead of being refused.
    let mut waiting = TcpStream::connect(proxy.handle.addr()).await.unwrap();
    waiting.write_all(GET).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.peek(&mut byte)).await;
    assert!(
        early.is_err(),
        "a connection over the cap of {CAP} was answered (or closed)"
    );
    assert_eq!(
        legacy.hits(),
        CAP,
        "the waiting request reached the upstream"
    );
    // The open connections are served as before.
    for socket in &mut open {
        assert_eq!(get_on(socket).await, 200);
    }
    // One closes: the waiting client is accepted and its request answered.
    drop(open.pop());
    assert_eq!(read_answer(&mut waiting).await, 200);
    assert_eq!(legacy.hits(), 2 * CAP + 1);
    drop(open);
    drop(waiting);
    proxy.stop().await;
}

#[tokio::test]
async fn slow_heads_holding_every_slot_are_cut_and_the_waiting_client_is_served() {
    const CAP: usize = 4;
    let legacy = named::start("L").await;
    let proxy = Proxy::start(&with_listen(
        &legacy.url(),
        &format!("max_connections = {CAP}\nheader_read_timeout = \"1s\"\nidle_timeout = \"60s\""),
    ))
    .await;
    let mut slow = Vec::new();
    for _ in 0..CAP {
        let mut socket = TcpStream::connect(proxy.handle.addr()).await.unwrap();
        // Served once, so the slot is surely taken; then a head that never ends.
        assert_eq!(get_on(&mut socket).await, 200);
        socket
            .write_all(b"GET /slow HTTP/1.1\r\nHost: shop.example\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(socket);
    }
    let mut waiting = TcpStream::connect(proxy.handle.addr()).await.unwrap();
    waiting.write_all(GET).await.unwrap();
    // header_read_timeout cuts the slow heads, which frees their slots.
    assert_eq!(read_answer(&mut waiting).await, 200);
    for socket in &mut slow {
        assert!(
            read_to_close(socket).await.is_some(),
            "a slow head outlived header_read_timeout"
        );
    }
    assert_eq!(legacy.hits(), CAP + 1, "no slow head reached the upstream");
    drop(waiting);
    proxy.stop().await;
}
