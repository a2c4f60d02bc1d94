//! The client side of an exchange: one connection per request (or one kept alive), HTTP/1.1
//! written and read byte for byte, HTTP/2 through hyper's connection-level client, either in
//! clear or over TLS with the protocol chosen by ALPN.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::{DEFAULT_HOST, Exchange, Req};

/// The HTTP version a [`Client`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.1, one connection per request.
    Http1,
    /// HTTP/2 (prior knowledge in clear, ALPN `h2` over TLS), one connection per request.
    Http2,
}

/// How to reach one server: address, version, TLS, and header fields added to every request.
#[derive(Clone)]
pub struct Client {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The HTTP version.
    pub version: Version,
    /// TLS settings and the server name to verify, when the server speaks TLS.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// Added to every request (e.g. what a TLS front door tells the monolith).
    extra_headers: Vec<(String, Vec<u8>)>,
    /// With keep-alive, the HTTP/1.1 connection kept open between requests.
    kept: Option<Arc<tokio::sync::Mutex<Option<Connection>>>>,
    /// Connections opened so far.
    opened: Arc<AtomicUsize>,
}

/// Any byte stream a request can go over: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open HTTP/1.1 connection.
type Connection = BufReader<Box<dyn Stream>>;

impl Client {
    /// HTTP/1.1 in clear to `addr`.
    pub fn h1(addr: SocketAddr) -> Self {
        Self {
            addr,
            version: Version::Http1,
            tls: None,
            extra_headers: Vec::new(),
            kept: None,
            opened: Arc::default(),
        }
    }

    /// Sends every HTTP/1.1 request on one kept-alive connection (a new one only when the
    /// server ends it), so a framing mistake shows in the next answer.
    pub fn keep_alive(mut self) -> Self {
        self.kept = Some(Arc::default());
        self
    }

    /// HTTP/2 with prior knowledge (h2c) to `addr`.
    pub fn h2c(addr: SocketAddr) -> Self {
        Self {
            version: Version::Http2,
            ..Self::h1(addr)
        }
    }

    /// `version` over TLS to `addr`, verifying `server_name` with `config` (whose ALPN list
    /// is set here to the one protocol `version` needs).
    pub fn tls(
        addr: SocketAddr,
        version: Version,
        config: &ClientConfig,
        server_name: &str,
    ) -> Self {
        let mut config = config.clone();
        config.alpn_protocols = vec![alpn_id(version).to_vec()];
        let name = ServerName::try_from(server_name.to_owned())
            .unwrap_or_else(|e| panic!("server name {server_name}: {e}"));
        Self {
            addr,
            version,
            tls: Some((Arc::new(config), name)),
            extra_headers: Vec::new(),
            kept: None,
            opened: Arc::default(),
        }
    }

    /// Adds `name: value` to every request this client sends.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers
            .push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        self
    }

    /// A short name for messages, such as `h2+tls`.
    pub fn label(&self) -> String {
        let version = match self.version {
            Version::Http1 => "http/1.1",
            Version::Http2 => "h2",
        };
        let tls = if self.tls.is_some() { "+tls" } else { "" };
        let kept = if self.kept.is_some() {
            " keep-alive"
        } else {
            ""
        };
        format!("{version}{tls}{kept}")
    }

    /// Sends `req` (on a new connection unless kept alive) and reads the whole answer.
    pub async fn send(&self, req: &Req) -> anyhow::Result<Exchange> {
        let req = self.complete(req);
        if self.version == Version::Http2 {
            return send_h2(
                self.connect().await?,
                &req,
                self.scheme(),
                Full::new(req.body.clone()),
            )
            .await;
        }
        let Some(kept) = &self.kept else {
            return Ok(send_h1(&mut BufReader::new(self.connect().await?), &req)
                .await?
                .0);
        };
        let mut kept = kept.lock().await;
        let mut connection = match kept.take() {
            Some(open) => open,
            None => BufReader::new(self.connect().await?),
        };
        let (exchange, reusable) = send_h1(&mut connection, &req).await?;
        if reusable {
            *kept = Some(connection);
        }
        Ok(exchange)
    }

    /// Sends `req` with `body` instead of its own (a stream, for large uploads) through
    /// hyper's client, on a new connection, and reads the whole answer.
    pub async fn send_body<B>(&self, req: &Req, body: B) -> anyhow::Result<Exchange>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let req = self.complete(req);
        let stream = self.connect().await?;
        match self.version {
            Version::Http1 => send_hyper_h1(stream, &req, body).await,
            Version::Http2 => send_h2(stream, &req, self.scheme(), body).await,
        }
    }

    /// `req` with this client's extra header fields and a `Host`.
    fn complete(&self, req: &Req) -> Req {
        let mut req = req.clone();
        req.headers.extend(self.extra_headers.iter().cloned());
        if req.header_value("host").is_none() {
            req.headers
                .insert(0, ("host".to_owned(), DEFAULT_HOST.as_bytes().to_vec()));
        }
        req
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// How many connections this client (and its clones) opened.
    pub fn connections(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    /// A connected stream, TLS handshake done and the ALPN outcome checked (for protocols
    /// this module does not speak, such as WebSocket).
    pub async fn connect(&self) -> anyhow::Result<Box<dyn Stream>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let Some((config, name)) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name.clone(), tcp)
            .await
            .context("TLS handshake")?;
        let agreed = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        ensure!(
            agreed.as_deref() == Some(alpn_id(self.version)),
            "ALPN: asked for {:?}, the server chose {:?}",
            alpn_id(self.version).escape_ascii().to_string(),
            agreed.map(|a| a.escape_ascii().to_string())
        );
        Ok(Box::new(tls))
    }
}

fn alpn_id(version: Version) -> &'static [u8] {
    match version {
        Version::Http1 => b"http/1.1",
        Version::Http2 => b"h2",
    }
}

/// Writes `req` as HTTP/1.1 bytes and reads one answer by its framing.
async fn send_h1(stream: &mut Connection, req: &Req) -> anyhow::Result<(Exchange, bool)> {
    let mut head = Vec::new();
    head.extend_from_slice(req.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(&req.target);
    head.extend_from_slice(if req.http10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    for (name, value) in &req.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(&req.body);
    stream.get_mut().write_all(&head).await?;
    stream.get_mut().flush().await?;

    // Interim answers (100 Continue) come before the final one and are not kept.
    let exchange = loop {
        let answer = read_head(stream).await?;
        if !(100..=199).contains(&answer.status) || answer.status == 101 {
            break answer;
        }
    };
    let no_body = req.method == "HEAD" || matches!(exchange.status, 100..=199 | 204 | 304);
    let chunked = exchange
        .header_all("transfer-encoding")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(b"chunked"));
    let length = exchange.header("content-length").parse::<usize>().ok();
    let mut body = Vec::new();
    let mut reusable = !req.http10
        && !exchange
            .header_all("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"close"));
    match (no_body, chunked, length) {
        (true, _, _) => {}
        (false, true, _) => read_chunked(stream, &mut body).await?,
        (false, false, Some(length)) => {
            body.resize(length, 0);
            stream
                .read_exact(&mut body)
                .await
                .context("read the body")?;
        }
        (false, false, None) => {
            stream.read_to_end(&mut body).await?;
            reusable = false;
        }
    }
    Ok((
        Exchange {
            body: body.into(),
            ..exchange
        },
        reusable,
    ))
}

/// Reads one answer head (status line and header fields).
async fn read_head(stream: &mut Connection) -> anyhow::Result<Exchange> {
    let mut raw_head = Vec::new();
    loop {
        let before = raw_head.len();
        if stream.read_until(b'\n', &mut raw_head).await? == 0 {
            bail!(
                "the connection closed before a full answer head ({} bytes)",
                raw_head.len()
            );
        }
        if raw_head[before..] == *b"\r\n" || raw_head[before..] == *b"\n" {
            break;
        }
    }
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Response::new(&mut fields);
    parsed.parse(&raw_head).context("parse the answer head")?;
    let status = parsed.code.context("no status code")?;
    let headers = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    Ok(Exchange {
        status,
        headers,
        body: Bytes::new(),
    })
}

/// Decodes a chunked body into `body` (trailers are read and dropped).
async fn read_chunked(stream: &mut Connection, body: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        stream.read_until(b'\n', &mut line).await?;
        let text = std::str::from_utf8(&line)?.trim();
        let size = usize::from_str_radix(text.split(';').next().unwrap_or_default().trim(), 16)
            .with_context(|| format!("bad chunk size line {text:?}"))?;
        if size == 0 {
            loop {
                line.clear();
                if stream.read_until(b'\n', &mut line).await? == 0 || line.trim_ascii().is_empty() {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        stream
            .read_exact(&mut body[start..])
            .await
            .context("read a chunk")?;
        ensure!(body.ends_with(b"\r\n"), "a chunk does not end with CRLF");
        body.truncate(start + size);
    }
}

/// Sends `req` (its body replaced by `body`) over HTTP/2; its `Host` becomes the `:authority`.
async fn send_h2<B>(
    stream: Box<dyn Stream>,
    req: &Req,
    scheme: &str,
    body: B,
) -> anyhow::Result<Exchange>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let authority =
        String::from_utf8_lossy(req.header_value("host").unwrap_or(DEFAULT_HOST.as_bytes()))
            .into_owned();
    let uri = format!(
        "{scheme}://{authority}{}",
        std::str::from_utf8(&req.target).context("an HTTP/2 target must be text")?
    );
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(uri)
        .version(http::Version::HTTP_2);
    for (name, value) in req.headers.iter().filter(|(n, _)| n != "host") {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    let result =
        async { Exchange::read(sender.send_request(builder.body(body)?).await?).await }.await;
    connection.abort();
    result
}

/// Sends `req` (its body replaced by `body`) over HTTP/1.1 with hyper's client, which
/// frames a body of unknown length as chunked.
async fn send_hyper_h1<B>(stream: Box<dyn Stream>, req: &Req, body: B) -> anyhow::Result<Exchange>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let target = std::str::from_utf8(&req.target).context("a hyper target must be text")?;
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(target);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    let result =
        async { Exchange::read(sender.send_request(builder.body(body)?).await?).await }.await;
    connection.abort();
    result
}
