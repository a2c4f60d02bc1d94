//! Whole HTTP exchanges captured exactly as they arrived, over HTTP/1.1 or HTTP/2, in clear or
//! over TLS, and the comparison of a direct answer with a proxied one.
//!
//! HTTP/1.1 requests are written byte for byte (so a target may hold raw UTF-8) and answers
//! are parsed by hand, keeping every header field as sent, in order. HTTP/2 goes through
//! hyper's connection-level client, which adds nothing of its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::{Legacy, Proxy, routes_toml};

/// The `Host` sent when a request names none: the same on every side, so answers that build
/// links from it (feeds) agree.
pub const DEFAULT_HOST: &str = "shop.example";

/// What the proxy adds to every answer, and the only thing it may add.
pub const VIA: &str = "1.1 strangler";

/// Header fields left out of comparisons: they describe a connection or a moment, not the
/// answer (a chunked answer may legitimately stay chunked, or not, across a hop).
pub const NOT_COMPARED: [&str; 4] = ["date", "connection", "keep-alive", "transfer-encoding"];

// === Req ===

/// A request, as data, so the very same one can be sent to several servers.
#[derive(Debug, Clone)]
pub struct Req {
    /// The method, as sent.
    pub method: String,
    /// The request target (path and query), as raw bytes.
    pub target: Vec<u8>,
    /// Header fields in order; `host` is added at send time when absent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Bytes,
}

impl Req {
    /// A request with no headers and no body.
    pub fn new(method: &str, target: impl AsRef<[u8]>) -> Self {
        Self {
            method: method.to_owned(),
            target: target.as_ref().to_vec(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `GET target`.
    pub fn get(target: impl AsRef<[u8]>) -> Self {
        Self::new("GET", target)
    }

    /// `HEAD target`.
    pub fn head(target: impl AsRef<[u8]>) -> Self {
        Self::new("HEAD", target)
    }

    /// `OPTIONS target`.
    pub fn options(target: impl AsRef<[u8]>) -> Self {
        Self::new("OPTIONS", target)
    }

    /// `DELETE target`.
    pub fn delete(target: impl AsRef<[u8]>) -> Self {
        Self::new("DELETE", target)
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body with its `Content-Type` and `Content-Length`.
    pub fn body(self, content_type: &str, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let mut req = self
            .header("content-type", content_type)
            .header("content-length", body.len().to_string());
        req.body = body;
        req
    }

    /// Sets a JSON body.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.body("application/json", value.to_string())
    }

    /// Sets an `application/x-www-form-urlencoded` body.
    pub fn form(self, encoded: &str) -> Self {
        self.body("application/x-www-form-urlencoded", encoded.to_owned())
    }

    /// The value of the first header field called `name`.
    fn header_value(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// `METHOD target`, for messages.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target.escape_ascii())
    }
}

// === Exchange ===

/// An answer as the client received it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The status code.
    pub status: u16,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body, after transfer decoding (content codings such as gzip are kept).
    pub body: Bytes,
}

impl Exchange {
    /// The first value of `name`, as text (empty when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .unwrap_or_default()
    }

    /// Every value of `name`.
    pub fn header_all(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The end-to-end header fields, grouped by name (values in order).
    fn end_to_end(&self) -> BTreeMap<&str, Vec<&[u8]>> {
        let mut fields: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
        for (name, value) in &self.headers {
            if !NOT_COMPARED.contains(&name.as_str()) {
                fields.entry(name).or_default().push(value);
            }
        }
        fields
    }
}

// === Client ===

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
}

/// Any byte stream a request can go over.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Client {
    /// HTTP/1.1 in clear to `addr`.
    pub fn h1(addr: SocketAddr) -> Self {
        Self {
            addr,
            version: Version::Http1,
            tls: None,
            extra_headers: Vec::new(),
        }
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
        if self.tls.is_some() {
            format!("{version}+tls")
        } else {
            version.to_owned()
        }
    }

    /// Sends `req` on a new connection and reads the whole answer.
    pub async fn send(&self, req: &Req) -> anyhow::Result<Exchange> {
        let mut req = req.clone();
        req.headers.extend(self.extra_headers.iter().cloned());
        if req.header_value("host").is_none() {
            req.headers
                .insert(0, ("host".to_owned(), DEFAULT_HOST.as_bytes().to_vec()));
        }
        let stream = self.connect().await?;
        match self.version {
            Version::Http1 => send_h1(stream, &req).await,
            Version::Http2 => {
                send_h2(
                    stream,
                    &req,
                    if self.tls.is_some() { "https" } else { "http" },
                )
                .await
            }
        }
    }

    /// A connected stream, TLS handshake done and the ALPN outcome checked.
    async fn connect(&self) -> anyhow::Result<Box<dyn Stream>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect to {}", self.addr))?;
        tcp.set_nodelay(true)?;
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
async fn send_h1(stream: Box<dyn Stream>, req: &Req) -> anyhow::Result<Exchange> {
    let mut stream = BufReader::new(stream);
    let mut head = Vec::new();
    head.extend_from_slice(req.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(&req.target);
    head.extend_from_slice(b" HTTP/1.1\r\n");
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
    let headers: Vec<(String, Vec<u8>)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let exchange = Exchange {
        status,
        headers,
        body: Bytes::new(),
    };

    let no_body = req.method == "HEAD" || matches!(status, 100..=199 | 204 | 304);
    let chunked = exchange
        .header_all("transfer-encoding")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(b"chunked"));
    let length = exchange.header("content-length").parse::<usize>().ok();
    let mut body = Vec::new();
    match (no_body, chunked, length) {
        (true, _, _) => {}
        (false, true, _) => read_chunked(&mut stream, &mut body).await?,
        (false, false, Some(length)) => {
            body.resize(length, 0);
            stream
                .read_exact(&mut body)
                .await
                .context("read the body")?;
        }
        (false, false, None) => {
            stream.read_to_end(&mut body).await?;
        }
    }
    Ok(Exchange {
        body: body.into(),
        ..exchange
    })
}

/// Decodes a chunked body into `body` (trailers are read and dropped).
async fn read_chunked(
    stream: &mut BufReader<Box<dyn Stream>>,
    body: &mut Vec<u8>,
) -> anyhow::Result<()> {
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

/// Sends `req` over HTTP/2; its `Host` becomes the `:authority`.
async fn send_h2(stream: Box<dyn Stream>, req: &Req, scheme: &str) -> anyhow::Result<Exchange> {
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
    let request = builder.body(Full::new(req.body.clone()))?;
    let result = async {
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        anyhow::Ok(Exchange {
            status: parts.status.as_u16(),
            headers,
            body,
        })
    }
    .await;
    connection.abort();
    result
}

// === comparison ===

/// How `proxied` differs from `direct`, one line per difference; empty when the proxy was
/// transparent: same status, same end-to-end header fields (but [`NOT_COMPARED`]), plus
/// exactly one `Via: 1.1 strangler`, and the same body bytes.
pub fn differences(direct: &Exchange, proxied: &Exchange) -> Vec<String> {
    let mut out = Vec::new();
    if direct.status != proxied.status {
        out.push(format!(
            "status: direct {} ≠ proxied {}",
            direct.status, proxied.status
        ));
    }
    let expected = direct.end_to_end();
    let mut got = proxied.end_to_end();
    match got.get_mut("via") {
        Some(vias) => {
            let expected_vias = expected.get("via").map(Vec::len).unwrap_or(0);
            let ours = vias.iter().filter(|v| **v == VIA.as_bytes()).count();
            if ours != 1 || vias.len() != expected_vias + 1 {
                out.push(format!(
                    "via: expected one extra {VIA:?}, got {}",
                    show_values(vias)
                ));
            }
            if let Some(at) = vias.iter().position(|v| *v == VIA.as_bytes()) {
                vias.remove(at);
            }
            if vias.is_empty() {
                got.remove("via");
            }
        }
        None => out.push(format!("via: the proxied answer has no {VIA:?}")),
    }
    for name in expected
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (a, b) = (expected.get(name), got.get(name));
        if a != b {
            let show = |v: Option<&Vec<&[u8]>>| {
                v.map(|v| show_values(v))
                    .unwrap_or_else(|| "(absent)".to_owned())
            };
            out.push(format!(
                "header {name}: direct {} ≠ proxied {}",
                show(a),
                show(b)
            ));
        }
    }
    if direct.body != proxied.body {
        out.push(body_difference(&direct.body, &proxied.body));
    }
    out
}

/// Panics with a readable report unless `proxied` matches `direct` (see [`differences`]).
pub fn assert_transparent(what: &str, direct: &Exchange, proxied: &Exchange) {
    let found = differences(direct, proxied);
    assert!(
        found.is_empty(),
        "{what}: the proxied answer differs from the direct one:\n  {}",
        found.join("\n  ")
    );
}

fn show_values(values: &[&[u8]]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| format!("{:?}", String::from_utf8_lossy(v)))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Lengths, and where and how the bodies first part ways.
fn body_difference(direct: &[u8], proxied: &[u8]) -> String {
    let at = direct
        .iter()
        .zip(proxied)
        .position(|(a, b)| a != b)
        .unwrap_or(direct.len().min(proxied.len()));
    let window = |body: &[u8]| {
        let from = at.saturating_sub(24);
        let to = (at + 40).min(body.len());
        format!("…{}…", body[from.min(to)..to].escape_ascii())
    };
    let mut text = format!(
        "body: direct {} bytes ≠ proxied {} bytes; first difference at byte {at}",
        direct.len(),
        proxied.len()
    );
    let _ = write!(
        text,
        "\n      direct:  {}\n      proxied: {}",
        window(direct),
        window(proxied)
    );
    text
}

// === Twins ===

/// Two identical legacy-shims with stable answers and fresh databases: `direct` is asked
/// directly, `behind` sits behind `proxy`. Sending the same requests in the same order to
/// `direct` and to `proxy` must give the same answers, writes and generated ids included.
pub struct Twins {
    /// The legacy-shim asked directly.
    pub direct: Legacy,
    /// The legacy-shim behind the proxy.
    pub behind: Legacy,
    /// The proxy in front of `behind`.
    pub proxy: Proxy,
}

impl Twins {
    /// Starts both shims and the proxy with [`Twins::routes`] plus `extra` (more tables, such
    /// as `[listen.tls]`), writing `files` (name, contents) beside its routes.toml.
    pub async fn start(extra: &str, files: &[(&str, &[u8])]) -> Self {
        let direct = Legacy::stable().await;
        let behind = Legacy::stable().await;
        let routes = routes_toml(
            &behind.url(),
            &format!("{}\n{extra}", Self::routes(&behind.url())),
        );
        let proxy = Proxy::start_with_files(&routes, files).await;
        Self {
            direct,
            behind,
            proxy,
        }
    }

    /// Routes that send everything to `legacy` one way or another, so routing is exercised
    /// but never changes who answers: `legacy`-mode routes to the default upstream and to a
    /// second upstream name for the same shim; the rest falls through to the default.
    pub fn routes(legacy_url: &str) -> String {
        format!(
            r#"[upstreams.monolith]
url = "{legacy_url}"

[[routes]]
id = "product-page"
match = {{ path = "/products/{{sku}}", methods = ["GET", "HEAD"] }}
mode = "legacy"
legacy = "legacy"

[[routes]]
id = "api"
match = {{ path = "/api/*" }}
mode = "legacy"
legacy = "monolith"

[[routes]]
id = "misc"
match = {{ path = "/misc/*" }}
mode = "legacy"
"#
        )
    }

    /// Stops all three.
    pub async fn stop(self) {
        self.proxy.stop().await;
        self.behind.stop().await;
        self.direct.stop().await;
    }
}
