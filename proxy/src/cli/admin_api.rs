//! Reading a running proxy's admin API from the command line (plain HTTP/1.1 over loopback,
//! with the same hyper client the proxy is built on).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

/// The longest the CLI waits for one admin answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the admin API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AdminApiError {
    /// Nothing answers at the address.
    #[error("no strangler admin API at {addr}: is `strangler run` running?")]
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
    },
    /// The address in the config or on the command line is not `IP:port`.
    #[error(
        "\"{0}\" is not an admin address; write IP:port, e.g. --admin 127.0.0.1:9901 (or set [admin] address)"
    )]
    Address(String),
    /// `[admin] address` uses port 0: the real port is only known to the running proxy.
    #[error(
        "[admin] address is {0}, so the running proxy's port is not known; pass --admin 127.0.0.1:PORT (the port `strangler run` printed)"
    )]
    EphemeralPort(SocketAddr),
    /// The proxy answered with an error.
    #[error("the admin API answered {status} to {path}: {body}")]
    Status {
        /// The path asked for.
        path: String,
        /// The status.
        status: http::StatusCode,
        /// The answer's body.
        body: String,
    },
    /// The answer could not be read or is not the expected JSON.
    #[error("cannot read the admin API's answer to {path}: {detail}")]
    Answer {
        /// The path asked for.
        path: String,
        /// Why.
        detail: String,
    },
}

/// A client of one proxy's admin API.
#[derive(Debug, Clone)]
pub struct AdminApi {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl AdminApi {
    /// The admin API at `address` (a wildcard IP means this host's loopback).
    pub fn new(address: &str) -> Result<Self, AdminApiError> {
        let mut addr: SocketAddr = address
            .trim()
            .parse()
            .map_err(|_| AdminApiError::Address(address.to_owned()))?;
        if addr.port() == 0 {
            return Err(AdminApiError::EphemeralPort(addr));
        }
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(Self {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// The admin API of the proxy `config` describes, or at `--admin` when given.
    pub fn locate(config: &Path, admin: Option<&str>) -> anyhow::Result<Self> {
        if let Some(admin) = admin {
            return Ok(Self::new(admin)?);
        }
        let config = crate::config::load(config).map_err(|diags| {
            anyhow::anyhow!(
                "{diags}\ncannot find the admin address in {}; fix it or pass --admin IP:PORT",
                config.display()
            )
        })?;
        Ok(Self::new(&config.raw().admin.address)?)
    }

    /// `GET path` (e.g. `/admin/shadow`), its JSON answer read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminApiError> {
        let answer = |detail: String| AdminApiError::Answer {
            path: path.to_owned(),
            detail,
        };
        let uri: http::Uri = format!("http://{}{path}", self.addr)
            .parse()
            .map_err(|e: http::uri::InvalidUri| answer(e.to_string()))?;
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| answer(e.to_string()))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| answer(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| {
                if e.is_connect() {
                    AdminApiError::Unreachable { addr: self.addr }
                } else {
                    answer(e.to_string())
                }
            })?;
        let status = response.status();
        let body = tokio::time::timeout(TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| answer(format!("the body did not arrive within {TIMEOUT:?}")))?
            .map_err(|e| answer(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(AdminApiError::Status {
                path: path.to_owned(),
                status,
                body: String::from_utf8_lossy(&body).trim().to_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| answer(e.to_string()))
    }
}

/// `s` made safe for a query string value (route ids are already, this is for the rest).
pub fn query_value(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_listening_says_so() {
        // Bind then drop: the port is (almost certainly) closed now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let api = AdminApi::new(&addr.to_string()).unwrap();
        let err = api
            .get::<serde_json::Value>("/admin/shadow")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("no strangler admin API at {addr}: is `strangler run` running?")
        );
    }

    #[test]
    fn addresses() {
        assert!(AdminApi::new("localhost:9901").is_err());
        assert!(matches!(
            AdminApi::new("127.0.0.1:0"),
            Err(AdminApiError::EphemeralPort(_))
        ));
        assert_eq!(
            AdminApi::new("0.0.0.0:9901").unwrap().addr.to_string(),
            "127.0.0.1:9901"
        );
    }
}
