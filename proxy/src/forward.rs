//! Forwarding to upstreams: the connection pool, header rules, timeouts and retries.
//!
//! Each named upstream owns its [`pool`] of HTTP/1.1 connections (its connect timeout lives
//! in the connector), so a reload that leaves an upstream unchanged keeps its warm
//! connections. The requesting task speaks HTTP/1.1 on them itself ([`conn`], [`h1`]).
//! Bodies stream in both directions; only a request body up to [`body::BUFFER_LIMIT`] is
//! read whole first.
//! Only a connection that could not be opened is retried (`connect_retries`, inside the
//! [`connect::RetryConnector`]): the request is sent once, so nothing can reach an upstream
//! twice.

pub mod body;
mod conn;
mod connect;
mod error;
mod h1;
pub mod headers;
mod pool;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, header, request};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::config::{Diagnostic, HostHeader, RawConfig, UpstreamConfig};
use connect::RetryConnector;
use pool::{Pool, SendError};

pub use body::{BodyError, BoxError, Buffered, Prepared, ProxyBody};
pub use conn::{PooledBody, Upgraded, UpstreamError};
pub use error::ForwardError;

/// One backend: where it is, how to talk to it, and its connection pool.
#[derive(Debug)]
pub struct Upstream {
    name: Arc<str>,
    /// Value for `Host` when the upstream rewrites it.
    authority_header: HeaderValue,
    /// Path prefix from the URL (`http://h/app` → `/app`), prepended to forwarded paths.
    path_prefix: Option<Arc<str>>,
    settings: UpstreamConfig,
    pool: Pool,
}

/// All upstreams of one configuration, by name.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    by_name: HashMap<Arc<str>, Arc<Upstream>>,
}

impl Upstreams {
    /// Builds the upstreams of `raw`, reusing from `previous` every upstream whose settings did
    /// not change (keeping its pool warm across reloads).
    pub fn build(raw: &RawConfig, previous: Option<&Upstreams>) -> Result<Self, Vec<Diagnostic>> {
        let mut by_name = HashMap::new();
        let mut errors = Vec::new();
        for (name, settings) in &raw.upstreams {
            let reused = previous
                .and_then(|p| p.by_name.get(name.as_str()))
                .filter(|u| &u.settings == settings)
                .cloned();
            let upstream = match reused {
                Some(u) => u,
                None => match Upstream::new(name, settings) {
                    Ok(u) => Arc::new(u),
                    Err(message) => {
                        errors.push(Diagnostic::new(format!("upstreams.{name}.url"), message));
                        continue;
                    }
                },
            };
            by_name.insert(Arc::from(name.as_str()), upstream);
        }
        if errors.is_empty() {
            Ok(Self { by_name })
        } else {
            Err(errors)
        }
    }

    /// The upstream called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.by_name.get(name)
    }
}

/// What the forwarder knows of the client side of an exchange.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide {
    /// The client's address.
    pub addr: std::net::SocketAddr,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub proto: &'static str,
}

impl Upstream {
    fn new(name: &str, settings: &UpstreamConfig) -> Result<Self, String> {
        let uri: Uri = settings
            .url
            .parse()
            .map_err(|e| format!("`{}` is not a valid URL: {e}", settings.url))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("`{}` has no scheme; write http://host:port", settings.url))?;
        if scheme != Scheme::HTTP {
            return Err(format!(
                "upstream scheme `{scheme}` is not supported; use http://"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("`{}` has no host", settings.url))?;
        let authority_header =
            HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        let path_prefix = match uri.path().trim_end_matches('/') {
            "" => None,
            prefix => Some(Arc::from(prefix)),
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let address = Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|e| e.to_string())?;
        let pool = Pool::new(
            RetryConnector::new(connector, settings.connect_retries),
            address,
            settings.pool_idle_timeout,
        );
        Ok(Self {
            name: Arc::from(name),
            authority_header,
            path_prefix,
            settings: settings.clone(),
            pool,
        })
    }

    /// The upstream's name in routes.toml.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// How long the upstream may take to send its response head.
    pub fn response_timeout(&self) -> Duration {
        self.settings.response_timeout
    }

    /// Rewrites `parts` to target this upstream: the path (origin form, as the connection to
    /// the upstream carries it, with the URL's prefix), Host per policy.
    pub fn target(&self, parts: &mut request::Parts) -> Result<(), ForwardError> {
        let path_and_query = match (&self.path_prefix, parts.uri.path_and_query()) {
            (None, Some(pq)) => pq.clone(),
            (None, None) => PathAndQuery::from_static("/"),
            (Some(prefix), pq) => {
                let pq = pq.map_or("/", PathAndQuery::as_str);
                PathAndQuery::try_from(format!("{prefix}{pq}"))
                    .map_err(|_| ForwardError::BadRequest("invalid request target"))?
            }
        };
        // The client's Host (h1) or :authority (h2); an absent Host on HTTP/1.1 was refused earlier.
        if !parts.headers.contains_key(header::HOST) {
            if let Some(authority) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                parts.headers.insert(header::HOST, authority);
            }
        }
        if self.settings.host_header == HostHeader::Rewrite
            || !parts.headers.contains_key(header::HOST)
        {
            parts
                .headers
                .insert(header::HOST, self.authority_header.clone());
        }
        parts.uri = Uri::from(path_and_query);
        parts.version = http::Version::HTTP_11;
        Ok(())
    }

    /// Sends a request already [`target`](Self::target)ed at this upstream and waits for the
    /// response head, within the upstream's response timeout. A connection that fails to
    /// open is retried `connect_retries` times by the connector, before anything is sent.
    ///
    /// A plain function returning the pool's future, timed and mapped: an `async fn` would
    /// keep its arguments beside the future they are moved into, and every request's future
    /// (and every mirror's task) would carry both.
    pub fn send(
        &self,
        parts: request::Parts,
        body: Prepared,
    ) -> impl Future<Output = Result<Response<PooledBody>, ForwardError>> + Send + '_ {
        let body = match body {
            Prepared::Whole(b) => b.to_body(),
            Prepared::Streaming(b) => b,
        };
        let timeout = self.settings.response_timeout;
        let sending =
            tokio::time::timeout(timeout, self.pool.send(Request::from_parts(parts, body)));
        futures_util::FutureExt::map(sending, move |sent| match sent {
            Err(_) => Err(ForwardError::Timeout {
                upstream: self.name.to_string(),
                timeout_ms: timeout.as_millis(),
            }),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.classify(e)),
        })
    }

    fn classify(&self, e: SendError) -> ForwardError {
        match e {
            SendError::Connect(e) => {
                let detail = error_chain(&*e);
                // A connect timeout surfaces as a connect error; the client sees 504 for it.
                if detail.contains("timed out") || detail.contains("timeout") {
                    return ForwardError::Timeout {
                        upstream: self.name.to_string(),
                        timeout_ms: self.settings.connect_timeout.as_millis(),
                    };
                }
                ForwardError::Connect {
                    upstream: self.name.to_string(),
                    detail,
                }
            }
            SendError::Upstream(e) if body::is_too_large(&e) => {
                ForwardError::BodyTooLarge { limit: 0 }
            }
            SendError::Upstream(e) => ForwardError::Upstream {
                upstream: self.name.to_string(),
                detail: error_chain(&e),
            },
        }
    }
}

/// The error and its causes, joined, for logs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str, host_header: HostHeader) -> Upstream {
        let settings: UpstreamConfig = toml::from_str(&format!("url = \"{url}\"")).unwrap();
        Upstream::new(
            "legacy",
            &UpstreamConfig {
                host_header,
                ..settings
            },
        )
        .unwrap()
    }

    fn parts(uri: &str, host: Option<&str>) -> request::Parts {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn targets_upstream_preserving_host() {
        let u = upstream("http://127.0.0.1:8081", HostHeader::Preserve);
        let mut p = parts("/api/products?q=%C3%A9", Some("shop.example"));
        u.target(&mut p).unwrap();
        assert_eq!(p.uri, "/api/products?q=%C3%A9");
        assert_eq!(p.headers["host"], "shop.example");
    }

    #[test]
    fn rewrites_host_and_prepends_prefix() {
        let u = upstream("http://127.0.0.1:8082/app/", HostHeader::Rewrite);
        let mut p = parts("/misc/health", Some("shop.example"));
        u.target(&mut p).unwrap();
        assert_eq!(p.uri, "/app/misc/health");
        assert_eq!(p.headers["host"], "127.0.0.1:8082");
    }

    #[test]
    fn h2_authority_becomes_host() {
        let u = upstream("http://127.0.0.1:8081", HostHeader::Preserve);
        let mut p = parts("http://shop.example:8080/x", None);
        u.target(&mut p).unwrap();
        assert_eq!(p.headers["host"], "shop.example:8080");
        assert_eq!(p.uri, "/x");
    }

    #[test]
    fn rejects_non_http_upstreams() {
        let settings: UpstreamConfig = toml::from_str("url = \"https://x\"").unwrap();
        assert!(
            Upstream::new("x", &settings)
                .unwrap_err()
                .contains("not supported")
        );
    }
}
