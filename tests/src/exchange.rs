//! Whole HTTP exchanges captured exactly as they arrived, and the comparison of a direct
//! answer with a proxied one.
//!
//! - [`Req`]: a request as data, so the very same one goes to several servers.
//! - [`Exchange`]: an answer with every header field as sent, in order.
//! - [`Client`] (`client`): HTTP/1.1 written and read byte for byte (a target may hold raw
//!   UTF-8), or HTTP/2 through hyper's connection-level client; in clear or over TLS.
//! - [`differences`] (`compare`): what differs beyond `Date`, framing and one `Via`.
//! - [`Twins`]: two identical shops, one behind a proxy.

mod client;
mod compare;

use bytes::Bytes;
use http_body_util::BodyExt;

use crate::{Legacy, Proxy, routes_toml};

pub use client::{Client, Stream, Version};
pub use compare::{NOT_COMPARED, VIA, assert_transparent, differences};

/// The `Host` sent when a request names none: the same on every side, so answers that build
/// links from it (feeds) agree.
pub const DEFAULT_HOST: &str = "shop.example";

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
    /// Sent as HTTP/1.0 (HTTP/1.1 clients only); such a connection is never reused.
    pub http10: bool,
}

impl Req {
    /// A request with no headers and no body.
    pub fn new(method: &str, target: impl AsRef<[u8]>) -> Self {
        Self {
            method: method.to_owned(),
            target: target.as_ref().to_vec(),
            headers: Vec::new(),
            body: Bytes::new(),
            http10: false,
        }
    }

    /// Sends this request as HTTP/1.0.
    pub fn http10(mut self) -> Self {
        self.http10 = true;
        self
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

    /// Sets the body bytes alone, framing headers left to the caller (e.g. a chunked body).
    pub fn raw_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
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
        let version = if self.http10 { " HTTP/1.0" } else { "" };
        format!("{} {}{version}", self.method, self.target.escape_ascii())
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

    /// Reads a hyper answer whole.
    pub async fn read(response: http::Response<hyper::body::Incoming>) -> anyhow::Result<Self> {
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        Ok(Self {
            status: parts.status.as_u16(),
            headers,
            body,
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
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
