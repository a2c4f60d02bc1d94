//! An upstream that holds every request until the test releases them all, so streams stay
//! open at the proxy for as long as a test needs them to.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The holding upstream; stops when dropped.
pub struct Gate {
    addr: SocketAddr,
    arrived: watch::Sender<usize>,
    open: watch::Sender<bool>,
    _tasks: JoinSet<()>,
}

/// Binds 127.0.0.1:0 and starts holding requests.
pub async fn start() -> Gate {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gate");
    let addr = listener.local_addr().expect("gate address");
    let arrived = watch::Sender::new(0);
    let (open, opened) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let counter = arrived.clone();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((socket, _)) = listener.accept().await {
            connections.spawn(serve(socket, counter.clone(), opened.clone()));
        }
    });
    Gate {
        addr,
        arrived,
        open,
        _tasks: tasks,
    }
}

impl Gate {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Request heads received so far.
    pub fn arrived(&self) -> usize {
        *self.arrived.borrow()
    }

    /// Waits until more than `n` request heads have arrived; false if `within` passed first.
    pub async fn more_than(&self, n: usize, within: Duration) -> bool {
        let mut arrived = self.arrived.subscribe();
        tokio::time::timeout(within, arrived.wait_for(|count| *count > n))
            .await
            .is_ok_and(|seen| seen.is_ok())
    }

    /// Answers every held request, and every later one at once.
    pub fn release(&self) {
        self.open.send_replace(true);
    }
}

/// Reads request heads (bodies by Content-Length), counts each, waits for the gate, answers.
async fn serve(
    mut socket: TcpStream,
    arrived: watch::Sender<usize>,
    mut open: watch::Receiver<bool>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let used = match request.parse(&buf) {
            Ok(httparse::Status::Complete(head)) => {
                let length: usize = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .unwrap_or(0);
                (buf.len() >= head + length).then_some(head + length)
            }
            Ok(httparse::Status::Partial) => None,
            Err(_) => return,
        };
        let Some(used) = used else {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        buf.drain(..used);
        arrived.send_modify(|count| *count += 1);
        if open.wait_for(|open| *open).await.is_err() {
            return;
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
        if socket.write_all(answer).await.is_err() {
            return;
        }
    }
}
