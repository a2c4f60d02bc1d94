//! Transparency for what a table of small requests cannot show: 10 MB bodies streamed each
//! way, a WebSocket relayed through the proxy, and many HTTP/2 streams on one connection.
//! Every answer is compared with the same request sent directly to an identical shop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, stream};
use http_body_util::{Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use system_tests::exchange::{Client, Exchange, Req, Twins, Version, assert_transparent};
use system_tests::tls::SelfSigned;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// 10 MiB.
const TEN_MB: usize = 10 * 1024 * 1024;
/// Bytes per frame of a streamed upload.
const FRAME: usize = 64 * 1024;

/// Frame `n` of the streamed upload: bytes that differ from frame to frame, so a lost,
/// repeated or reordered frame changes the digest.
fn upload_frame(n: usize) -> Bytes {
    (0..FRAME)
        .map(|i| (i.wrapping_mul(31) ^ n.wrapping_mul(7)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The whole upload as a stream of frames, generated as it is read.
fn upload_stream()
-> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Unpin> {
    StreamBody::new(stream::iter(
        (0..TEN_MB / FRAME).map(|n| Ok(Frame::data(upload_frame(n)))),
    ))
}

fn upload_digest() -> String {
    let mut digest = Sha256::new();
    for n in 0..TEN_MB / FRAME {
        digest.update(upload_frame(n));
    }
    hex::encode(digest.finalize())
}

#[tokio::test]
async fn a_10_mb_streamed_upload_arrives_whole_through_the_proxy() {
    let twins = Twins::start("", &[]).await;
    let direct = Client::h1(twins.direct.addr);
    let expected = upload_digest();
    let chunked = Req::new("POST", "/api/imports");
    let sized = Req::new("POST", "/api/imports").header("content-length", TEN_MB.to_string());
    let variants = [
        (
            "chunked",
            chunked.clone(),
            Client::h1(twins.proxy.handle.addr()),
        ),
        (
            "content-length",
            sized.clone(),
            Client::h1(twins.proxy.handle.addr()),
        ),
        (
            "h2c, unsized",
            chunked,
            Client::h2c(twins.proxy.handle.addr()),
        ),
        (
            "h2c, content-length",
            sized,
            Client::h2c(twins.proxy.handle.addr()),
        ),
    ];
    for (framing, req, proxied) in variants {
        let req = req
            .header("content-type", "application/octet-stream")
            .header("x-request-id", format!("upload-{framing}"));
        let a = direct.send_body(&req, upload_stream()).await.unwrap();
        let b = proxied.send_body(&req, upload_stream()).await.unwrap();
        assert_eq!(a.status, 200, "{framing}: {}", a.text());
        let answer: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(answer["bytes"], TEN_MB, "{framing}");
        assert_eq!(answer["sha256"], expected.as_str(), "{framing}");
        assert_transparent(&format!("10 MB upload, {framing}"), &a, &b);
    }
    twins.stop().await;
}

#[tokio::test]
async fn a_10_mb_streamed_download_arrives_whole_through_the_proxy() {
    let twins = Twins::start("", &[]).await;
    let req =
        Req::get(format!("/misc/download?bytes={TEN_MB}")).header("x-request-id", "download-10mb");
    let direct = Client::h1(twins.direct.addr).send(&req).await.unwrap();
    assert_eq!(direct.status, 200);
    assert_eq!(direct.header("content-length"), TEN_MB.to_string());
    assert_eq!(direct.body.len(), TEN_MB);
    assert!(
        direct
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| usize::from(*b) == i % 251),
        "the pattern"
    );
    for proxied in [
        Client::h1(twins.proxy.handle.addr()),
        Client::h2c(twins.proxy.handle.addr()),
    ] {
        let answer = proxied.send(&req).await.unwrap();
        assert_transparent(
            &format!("10 MB download over {}", proxied.label()),
            &direct,
            &answer,
        );
    }
    twins.stop().await;
}

/// Opens `/misc/ws` through `client` with a fixed key (so handshakes can be compared), sends
/// text and binary messages, reads each echo, closes, and returns the handshake answer.
async fn websocket_echo(client: &Client) -> Exchange {
    let scheme = if client.label().contains("tls") {
        "wss"
    } else {
        "ws"
    };
    let request = http::Request::get(format!("{scheme}://shop.example/misc/ws"))
        .header("host", "shop.example")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("x-request-id", "websocket-1")
        .body(())
        .unwrap();
    let stream = client.connect().await.unwrap();
    let (mut socket, handshake) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let sent = [
        Message::text("hello, shop ✓"),
        Message::binary(vec![0u8, 1, 2, 254, 255]),
        Message::binary(vec![7u8; 200_000]),
        Message::text(""),
    ];
    for message in &sent {
        socket.send(message.clone()).await.unwrap();
        let echo = socket.next().await.expect("an echo").unwrap();
        assert_eq!(&echo, message, "through {}", client.label());
    }
    socket.close(None).await.unwrap();
    while let Some(next) = socket.next().await {
        if next.is_err() {
            break;
        }
    }
    let headers = handshake
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    Exchange {
        status: handshake.status().as_u16(),
        headers,
        body: Bytes::new(),
    }
}

#[tokio::test]
async fn a_websocket_echoes_text_and_binary_through_the_proxy() {
    let twins = Twins::start("", &[]).await;
    let direct = websocket_echo(&Client::h1(twins.direct.addr)).await;
    let proxied = websocket_echo(&Client::h1(twins.proxy.handle.addr())).await;
    assert_eq!(direct.status, 101);
    assert_eq!(
        direct.header("sec-websocket-accept"),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_transparent("WebSocket handshake", &direct, &proxied);
    twins.stop().await;
}

#[tokio::test]
async fn a_websocket_works_through_the_proxy_over_tls() {
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
    let direct = websocket_echo(&Client::h1(twins.direct.addr)).await;
    let wss = Client::tls(
        twins.proxy.handle.addr(),
        Version::Http1,
        &cert.client_config(),
        "localhost",
    );
    let proxied = websocket_echo(&wss).await;
    assert_transparent("WebSocket handshake over TLS", &direct, &proxied);
    twins.stop().await;
}

#[tokio::test]
async fn many_h2_streams_on_one_connection_each_get_their_own_answer() {
    let twins = Twins::start("", &[]).await;
    let targets = [
        "/",
        "/products",
        "/products/RED-CHAIR",
        "/api/products",
        "/api/orders",
        "/api/batches/batch-001",
        "/misc/health",
        "/misc/feed.atom",
        "/misc/currency?from=EUR&to=SEK&amount=99.99",
        "/misc/export.csv?rows=2000",
        "/misc/download?bytes=300000",
        "/images/img-2",
        "/nowhere",
    ];
    let tcp = TcpStream::connect(twins.proxy.handle.addr()).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let answers = futures_util::future::join_all(targets.iter().enumerate().map(|(n, target)| {
        let mut sender = sender.clone();
        async move {
            let request = http::Request::get(format!("http://shop.example{target}"))
                .header("x-request-id", format!("h2-stream-{n}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            Exchange::read(sender.send_request(request).await.unwrap())
                .await
                .unwrap()
        }
    }))
    .await;
    connection.abort();
    let direct = Client::h1(twins.direct.addr);
    for ((n, target), proxied) in targets.iter().enumerate().zip(answers) {
        let answer = direct
            .send(&Req::get(*target).header("x-request-id", format!("h2-stream-{n}")))
            .await
            .unwrap();
        assert_transparent(&format!("h2 stream {n}, GET {target}"), &answer, &proxied);
    }
    twins.stop().await;
}
