//! Misbehaving upstreams, on raw TCP so they can do what no well-behaved server would.
//!
//! Besides the raw request heads ([`Fake::received`]), a fake keeps a [`Visit`] per connection:
//! when the head arrived, when the fake answers (or would answer, had its client waited) and
//! when its client hung up, so a test can order its own events against the fake's without
//! asserting on durations.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A fake upstream; its accept loop stops when this is dropped.
pub struct Fake {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Raw request heads it received, in order.
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
    /// One entry per connection, in order of arrival.
    visits: Arc<Mutex<Vec<Visit>>>,
    task: JoinHandle<()>,
}

/// What happened on one connection of a fake, and when.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The raw request head.
    pub head: Vec<u8>,
    /// When the head had arrived.
    pub arrived: Instant,
    /// When the fake answers, or would have answered had its client stayed: set on arrival
    /// for `SlowOk` (arrival + delay), at once for the fakes that answer at once; `None` for
    /// those that never answer (`Hang`, `CloseImmediately`, `Reset`).
    pub answers_at: Option<Instant>,
    /// When the client closed the connection (seen by `Hang`, the only fake that waits for it).
    pub client_left: Option<Instant>,
}

impl Visit {
    /// The value of header `name` in the recorded head, if present and text.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        request.parse(&self.head).ok()?;
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_owned)
    }
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

    /// The connections so far, in order of arrival.
    pub fn visits(&self) -> Vec<Visit> {
        self.visits.lock().map(|v| v.clone()).unwrap_or_default()
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
    /// Resets the connection (TCP RST, `SO_LINGER` 0) right after reading the request.
    Reset,
    /// Answers `500 Internal Server Error` with a small JSON body at once.
    ServerError,
    /// Writes these bytes as its answer at once, then closes (malformed answers).
    Raw(&'static [u8]),
}

/// The body [`Behaviour::ServerError`] answers with (`content-type: application/json`).
pub const SERVER_ERROR_BODY: &str = r#"{"error":"internal error","code":"internal"}"#;

/// Starts a fake upstream with `behaviour`.
pub async fn start(behaviour: Behaviour) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake upstream");
    let addr = listener.local_addr().expect("fake address");
    let received = Arc::new(Mutex::new(Vec::new()));
    let visits = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let visit_log = visits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let visit_log = visit_log.clone();
            tokio::spawn(async move {
                let head = read_head(&mut socket).await;
                let arrived = Instant::now();
                let answers_at = match behaviour {
                    Behaviour::SlowOk(ms) => Some(arrived + Duration::from_millis(ms)),
                    Behaviour::CloseMidBody | Behaviour::ServerError | Behaviour::Raw(_) => {
                        Some(arrived)
                    }
                    Behaviour::Hang | Behaviour::CloseImmediately | Behaviour::Reset => None,
                };
                let index = visit_log.lock().ok().map(|mut v| {
                    v.push(Visit {
                        head: head.clone(),
                        arrived,
                        answers_at,
                        client_left: None,
                    });
                    v.len() - 1
                });
                if let Ok(mut l) = log.lock() {
                    l.push(head);
                }
                match behaviour {
                    Behaviour::Hang => {
                        let mut sink = [0u8; 1024];
                        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                        if let (Some(i), Ok(mut v)) = (index, visit_log.lock()) {
                            v[i].client_left = Some(Instant::now());
                        }
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
                    Behaviour::Reset => {
                        let _ = socket.set_zero_linger();
                        drop(socket);
                    }
                    Behaviour::ServerError => {
                        let answer = format!(
                            "HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{SERVER_ERROR_BODY}",
                            SERVER_ERROR_BODY.len()
                        );
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                    Behaviour::Raw(answer) => {
                        let _ = socket.write_all(answer).await;
                        let _ = socket.flush().await;
                    }
                }
            });
        }
    });
    Fake {
        addr,
        received,
        visits,
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
