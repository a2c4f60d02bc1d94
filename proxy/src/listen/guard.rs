//! Request-head checks that hyper leaves to the proxy (HTTP-EDGE.md), run on every request
//! before the handler sees it: nothing they refuse reaches an upstream.
//!
//! hyper and httparse already refuse most malformed heads (bad tokens, obs-fold, whitespace
//! before the colon, control bytes in values, differing Content-Length values, a last coding
//! other than `chunked`, Transfer-Encoding in HTTP/1.0). What they accept but an upstream
//! could read differently is refused here: Content-Length lists and signs, codings besides
//! a single `chunked`, request targets a reverse proxy has no business with, overlong targets.
//! Content-Length together with Transfer-Encoding never reaches the header map (hyper drops
//! one of them), so that case is caught on the raw bytes by [`super::scan`].

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Full};

use crate::forward::ProxyBody;

/// Why a request is refused before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed or ambiguous: 400, and the connection is closed.
    BadRequest(&'static str),
    /// The request target is longer than the limit: 414.
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The client stopped sending its body for longer than the body read timeout: 408.
    BodyTimeout,
}

impl Refusal {
    /// The answer: status, a one-line text body, `x-strangler-error` and `Connection: close`
    /// (HTTP/1.1; hyper leaves it out of HTTP/2 answers).
    pub fn into_response(self) -> Response<ProxyBody> {
        let (status, cause, text) = match self {
            Self::BadRequest(why) => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("400 Bad Request: {why}\n"),
            ),
            Self::UriTooLong { limit } => (
                StatusCode::URI_TOO_LONG,
                "uri-too-long",
                format!("414 URI Too Long: request targets are limited to {limit} bytes here\n"),
            ),
            Self::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "408 Request Timeout: the request body stopped arriving\n".to_owned(),
            ),
        };
        let mut response = Response::new(
            Full::new(Bytes::from(text))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert("x-strangler-error", HeaderValue::from_static(cause));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Checks one request head; `max_uri` bounds the request target.
pub fn check<B>(request: &Request<B>, max_uri: usize) -> Result<(), Refusal> {
    let uri = request.uri();
    let target_len = uri
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len())
        .saturating_add(uri.authority().map_or(0, |a| a.as_str().len()));
    if target_len > max_uri {
        return Err(Refusal::UriTooLong { limit: max_uri });
    }
    target(request)?;
    if request.version() <= Version::HTTP_11 {
        framing(request.headers())?;
    }
    Ok(())
}

/// The request target must be one a reverse proxy serves (RFC 9112 §3.2): origin-form, or
/// absolute-form with an http(s) scheme, or `*` for OPTIONS. CONNECT (authority-form) asks
/// for a tunnel, which this proxy does not open.
fn target<B>(request: &Request<B>) -> Result<(), Refusal> {
    let uri = request.uri();
    if request.method() == Method::CONNECT {
        return Err(Refusal::BadRequest("CONNECT is not served here"));
    }
    if let Some(scheme) = uri.scheme_str() {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(Refusal::BadRequest(
                "request target with a scheme other than http(s)",
            ));
        }
    } else if uri.authority().is_some() {
        return Err(Refusal::BadRequest("authority-form target without CONNECT"));
    }
    let path = uri.path();
    if path == "*" {
        if request.method() != Method::OPTIONS {
            return Err(Refusal::BadRequest(
                "asterisk-form target is for OPTIONS only",
            ));
        }
    } else if !path.starts_with('/') {
        return Err(Refusal::BadRequest("request target does not start with /"));
    }
    Ok(())
}

/// Body framing an HTTP/1.1 upstream can only read one way: at most one Content-Length, of
/// digits alone; Transfer-Encoding, if any, one field saying exactly `chunked`.
fn framing(headers: &http::HeaderMap) -> Result<(), Refusal> {
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    if let Some(length) = lengths.next() {
        let bytes = length.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(Refusal::BadRequest("Content-Length is not a single number"));
        }
        if lengths.next().is_some() {
            return Err(Refusal::BadRequest("more than one Content-Length"));
        }
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(coding) = codings.next() {
        if !coding.as_bytes().eq_ignore_ascii_case(b"chunked") {
            return Err(Refusal::BadRequest(
                "Transfer-Encoding other than a single chunked",
            ));
        }
        if codings.next().is_some() {
            return Err(Refusal::BadRequest("more than one Transfer-Encoding field"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn refused(method: &str, target: &str, headers: &[(&str, &str)]) -> bool {
        check(&request(method, target, headers), 8192).is_err()
    }

    #[test]
    fn plain_requests_pass() {
        assert!(!refused("GET", "/a?b=c", &[("host", "h")]));
        assert!(!refused("POST", "/a", &[("content-length", "12")]));
        assert!(!refused("POST", "/a", &[("transfer-encoding", "Chunked")]));
        assert!(!refused("OPTIONS", "*", &[]));
        assert!(!refused("GET", "http://h/a", &[]));
        assert!(!refused("GET", "HTTPS://h/a", &[]));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for value in ["1, 1", "+1", "0x1", "1 ", ""] {
            assert!(
                refused("POST", "/", &[("content-length", value)]),
                "{value:?}"
            );
        }
        assert!(refused(
            "POST",
            "/",
            &[("content-length", "1"), ("content-length", "1")]
        ));
        for value in ["chunked, chunked", "gzip, chunked", "chunked ", "xchunked"] {
            assert!(
                refused("POST", "/", &[("transfer-encoding", value)]),
                "{value:?}"
            );
        }
        assert!(refused(
            "POST",
            "/",
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked")
            ]
        ));
    }

    #[test]
    fn targets_a_reverse_proxy_does_not_serve_are_refused() {
        assert!(refused("GET", "*", &[]));
        assert!(refused("GET", "ftp://h/a", &[]));
        assert!(refused("GET", "h:80", &[]));
        assert!(refused("CONNECT", "h:443", &[]));
    }

    #[test]
    fn long_targets_are_414() {
        let long = format!("/{}", "a".repeat(9000));
        assert_eq!(
            check(&request("GET", &long, &[]), 8192),
            Err(Refusal::UriTooLong { limit: 8192 })
        );
    }
}
