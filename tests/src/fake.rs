//! Misbehaving upstreams, on raw TCP so they can do what no well-behaved server would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A fake upstream; its accept loop stops when this is dropped.
pub struct Fake {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Raw request heads it received, in order.
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl Fake {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Number of requests (heads) received so far.
    pub fn count(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a fake answers each connection, given the request head it read.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Reads the request, never answers, keeps the socket open.
    Hang,
    /// Sends a head announcing `Content-Length: 100000`, 1000 bytes of body, then closes.
    CloseMidBody,
    /// Closes the connection right after reading the request.
    CloseImmediately,
    /// Answers 200 with a short body after the given milliseconds.
    SlowOk(u64),
}

/// Starts a fake upstream with `behaviour`.
pub async fn start(behaviour: Behaviour) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake upstream");
    let addr = listener.local_addr().expect("fake address");
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let head = read_head(&mut socket).await;
                if let Ok(mut l) = log.lock() {
                    l.push(head);
                }
                match behaviour {
                    Behaviour::Hang => {
                        let mut sink = [0u8; 1024];
                        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                    }
                    Behaviour::CloseMidBody => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n")
                            .await;
                        let _ = socket.write_all(&[b'x'; 1000]).await;
                        let _ = socket.flush().await;
                    }
                    Behaviour::CloseImmediately => {}
                    Behaviour::SlowOk(ms) => {
                        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow")
                            .await;
                    }
                }
            });
        }
    });
    Fake {
        addr,
        received,
        task,
    }
}

async fn read_head(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 1 << 20 {
            break;
        }
    }
    head
}
