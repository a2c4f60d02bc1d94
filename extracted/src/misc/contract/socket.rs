//! Over real sockets: the WebSocket echo (handshake headers and echoed messages), and
//! `serve_with`'s graceful shutdown.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::misc::Options;

/// A server on port 0, and what stops it.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn start_legacy() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = legacy_shim::Options {
        vary: false,
        ..legacy_shim::Options::default()
    };
    let task = tokio::spawn(async move {
        legacy_shim::serve(listener, options, async move {
            let _ = stopped.await;
        })
        .await
        .map_err(std::io::Error::other)
    });
    Running { addr, stop, task }
}

async fn start_candidate() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = Options {
        vary: false,
        defect: false,
        pictures: None,
    };
    let task = tokio::spawn(crate::misc::serve_with(listener, options, async move {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

/// Handshake, echo a text, a binary and a ping, close; what the client saw.
async fn chat(addr: SocketAddr) -> (Vec<(String, String)>, Vec<Message>) {
    let mut request = format!("ws://{addr}/misc/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-request-id", "ws-1".parse().unwrap());
    // A fixed key, so both servers' `Sec-WebSocket-Accept` can be compared.
    request.headers_mut().insert(
        "sec-websocket-key",
        "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    headers.sort();
    headers.insert(0, ("status".into(), response.status().to_string()));
    socket.send(Message::text("hello, support")).await.unwrap();
    socket
        .send(Message::binary(vec![0_u8, 1, 2, 255]))
        .await
        .unwrap();
    socket
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match socket.next().await {
            Some(Ok(message)) => seen.push(message),
            other => panic!("socket ended early: {other:?}"),
        }
    }
    socket.close(None).await.unwrap();
    (headers, seen)
}

#[tokio::test]
async fn websocket_echo_matches() {
    let (legacy, candidate) = (start_legacy().await, start_candidate().await);
    let patience = std::time::Duration::from_secs(20);
    let legacy_chat = tokio::time::timeout(patience, chat(legacy.addr))
        .await
        .unwrap();
    let candidate_chat = tokio::time::timeout(patience, chat(candidate.addr))
        .await
        .unwrap();
    assert_eq!(candidate_chat, legacy_chat);
    assert_eq!(candidate_chat.1[0], Message::text("hello, support"));
    assert!(matches!(&candidate_chat.1[2], Message::Pong(p) if p.as_ref() == b"are you there"));
    legacy.stop().await;
    candidate.stop().await;
}
