//! The upstream connector: hyper-util's `HttpConnector`, with a failed connect retried.
//!
//! Retrying here, where a connection is opened, instead of re-sending the request means no
//! request is ever cloned just in case: the request waits for a connection and is sent once.
//! A connection that could not be opened carried nothing, so a retry cannot make anything
//! reach an upstream twice. A connect that timed out is not retried (the client is told 504
//! after one `connect_timeout`, as before).

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;

/// Why a connection could not be opened (hyper-util's error, boxed).
pub type ConnectError = Box<dyn StdError + Send + Sync>;

/// `HttpConnector` that tries a refused or failed connect `retries` more times.
#[derive(Debug, Clone)]
pub struct RetryConnector {
    inner: HttpConnector,
    retries: u32,
}

impl RetryConnector {
    /// Wraps `inner`; a failed connect is tried again up to `retries` times.
    pub fn new(inner: HttpConnector, retries: u32) -> Self {
        Self { inner, retries }
    }
}

impl Service<Uri> for RetryConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future =
        Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, ConnectError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut inner = self.inner.clone();
        let retries = self.retries;
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                match inner.call(dst.clone()).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) if attempt < retries && !timed_out(&e) => {
                        attempt += 1;
                        tracing::debug!(%dst, attempt, error = %e, "connect failed; retrying");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        })
    }
}

/// Whether the connect failed by running out of `connect_timeout`.
fn timed_out(e: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn connector(retries: u32) -> RetryConnector {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        RetryConnector::new(http, retries)
    }

    #[tokio::test]
    async fn connects_on_first_try() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let uri: Uri = format!("http://{addr}/").parse().unwrap();
        assert!(connector(1).call(uri).await.is_ok());
    }

    #[tokio::test]
    async fn refused_connect_fails_after_its_retries() {
        // A port nobody listens on: bind, note it, close.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let uri: Uri = format!("http://{addr}/").parse().unwrap();
        let error = connector(2).call(uri).await.unwrap_err();
        assert!(!timed_out(&*error));
        assert!(
            crate::forward::error_chain(&*error).contains("connect"),
            "{error}"
        );
    }

    #[test]
    fn a_timeout_is_recognised_through_the_chain() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let timeout = Wrapper(std::io::Error::new(std::io::ErrorKind::TimedOut, "x"));
        let refused = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(timed_out(&timeout));
        assert!(!timed_out(&refused));
    }
}
