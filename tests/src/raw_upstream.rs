//! An upstream that records every byte it receives, for request-smuggling tests.
//!
//! It reads HTTP/1.1 requests off raw TCP with its own strict framing (`httparse` for heads,
//! `Content-Length` or chunked bodies) and answers each with `200 ok`. What it keeps lets a
//! test prove that the proxy sent nothing, or exactly one well-formed request: the bytes of
//! every connection, each request it could parse, and whether anything was left over or broken.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as the upstream read it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Request target.
    pub target: String,
    /// Header fields, names lower-case, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Received {
    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Log {
    /// Raw bytes per connection, in order of arrival.
    raw: Vec<Vec<u8>>,
    requests: Vec<Received>,
    /// Bytes the upstream could not read as a request (`what`, at which connection).
    broken: Vec<String>,
}

/// The recording upstream; its accept loop stops when this is dropped.
pub struct RawUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl RawUpstream {
    /// Binds 127.0.0.1:0 and starts answering.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind raw upstream");
        let addr = listener.local_addr().expect("raw upstream address");
        let log = Arc::new(Mutex::new(Log::default()));
        let accept_log = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let log = accept_log.clone();
                let index = {
                    let mut l = log.lock().unwrap();
                    l.raw.push(Vec::new());
                    l.raw.len() - 1
                };
                tokio::spawn(serve(socket, index, log));
            }
        });
        Self { addr, log, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests read so far, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().requests.clone()
    }

    /// All bytes received, over every connection.
    pub fn bytes_received(&self) -> usize {
        self.log.lock().unwrap().raw.iter().map(Vec::len).sum()
    }

    /// What could not be read as a well-formed request (empty when all was well-formed).
    pub fn broken(&self) -> Vec<String> {
        self.log.lock().unwrap().broken.clone()
    }

    /// The raw bytes of every connection, lossily as text (for failure messages).
    pub fn dump(&self) -> String {
        let log = self.log.lock().unwrap();
        log.raw
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, index: usize, log: Arc<Mutex<Log>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match parse(&buf) {
            Parsed::Request(request, used) => {
                buf.drain(..used);
                log.lock().unwrap().requests.push(request);
                let answer =
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
                if socket.write_all(answer).await.is_err() {
                    return;
                }
                continue;
            }
            Parsed::Broken(what) => {
                log.lock()
                    .unwrap()
                    .broken
                    .push(format!("connection {index}: {what}"));
                return;
            }
            Parsed::Partial => {}
        }
        let n = match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    log.lock().unwrap().broken.push(format!(
                        "connection {index}: {} bytes left over at close",
                        buf.len()
                    ));
                }
                return;
            }
            Ok(n) => n,
        };
        log.lock().unwrap().raw[index].extend_from_slice(&chunk[..n]);
        buf.extend_from_slice(&chunk[..n]);
    }
}

enum Parsed {
    Request(Received, usize),
    Partial,
    Broken(String),
}

/// Reads one strict HTTP/1.1 request off the front of `buf`.
fn parse(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(e) => return Parsed::Broken(format!("bad head: {e}")),
    };
    if request.version != Some(1) {
        return Parsed::Broken("not HTTP/1.1".into());
    }
    if !buf.starts_with(request.method.unwrap_or_default().as_bytes()) {
        return Parsed::Broken("bytes before the request line".into());
    }
    let fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let te: Vec<&[u8]> = fields
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .map(|(_, v)| v.as_slice())
        .collect();
    let cl: Vec<&[u8]> = fields
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_slice())
        .collect();
    let rest = &buf[head_len..];
    let (body, used) = match (te.as_slice(), cl.as_slice()) {
        ([], []) => (Vec::new(), 0),
        ([], [len]) => {
            let Some(len) = std::str::from_utf8(len)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok())
            else {
                return Parsed::Broken("bad content-length".into());
            };
            if rest.len() < len {
                return Parsed::Partial;
            }
            (rest[..len].to_vec(), len)
        }
        ([b"chunked"], []) => match dechunk(rest) {
            Dechunked::Done(body, used) => (body, used),
            Dechunked::Partial => return Parsed::Partial,
            Dechunked::Broken(what) => return Parsed::Broken(what),
        },
        _ => return Parsed::Broken("ambiguous framing".into()),
    };
    Parsed::Request(
        Received {
            method: request.method.unwrap_or_default().to_owned(),
            target: request.path.unwrap_or_default().to_owned(),
            headers: fields,
            body,
        },
        head_len + used,
    )
}

enum Dechunked {
    Done(Vec<u8>, usize),
    Partial,
    Broken(String),
}

fn dechunk(mut rest: &[u8]) -> Dechunked {
    let start = rest.len();
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Dechunked::Partial;
        };
        let Some(size) = std::str::from_utf8(&rest[..line_end])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
        else {
            return Dechunked::Broken("bad chunk size line".into());
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            // No trailers expected from the proxy: the last chunk ends with an empty line.
            return match rest {
                [b'\r', b'\n', ..] => Dechunked::Done(body, start - rest.len() + 2),
                [] | [b'\r'] => Dechunked::Partial,
                _ => Dechunked::Broken("trailers after the last chunk".into()),
            };
        }
        if rest.len() < size + 2 {
            return Dechunked::Partial;
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Dechunked::Broken("chunk data not followed by CRLF".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
