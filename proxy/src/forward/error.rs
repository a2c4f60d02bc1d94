//! The one place a proxy-side failure becomes the client's answer (STYLE.md rule 5).
//!
//! The client gets a short body and `x-strangler-error` naming the cause; the detail goes to
//! the log, never to the client.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::body::ProxyBody;

/// Why the proxy answered instead of an upstream.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The upstream could not be reached (refused, unreachable, connect timeout).
    #[error("cannot connect to upstream `{upstream}`: {detail}")]
    Connect {
        /// Upstream name.
        upstream: String,
        /// The transport's error text.
        detail: String,
    },
    /// The upstream took longer than its `response_timeout` to answer.
    #[error("upstream `{upstream}` did not answer within {timeout_ms} ms")]
    Timeout {
        /// Upstream name.
        upstream: String,
        /// The timeout that expired.
        timeout_ms: u128,
    },
    /// The upstream closed or broke the connection before a full response head.
    #[error("upstream `{upstream}` failed: {detail}")]
    Upstream {
        /// Upstream name.
        upstream: String,
        /// The transport's error text.
        detail: String,
    },
    /// The request body exceeds the route's limit.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request itself is malformed.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The route names an upstream the running table does not have (a reload race).
    #[error("no upstream named `{0}`")]
    UnknownUpstream(String),
}

impl ForwardError {
    /// The status the client sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Connect { .. } | Self::Upstream { .. } | Self::UnknownUpstream(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Short machine-readable cause for `x-strangler-error`, logs and metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "upstream-connect",
            Self::Timeout { .. } => "upstream-timeout",
            Self::Upstream { .. } => "upstream-failed",
            Self::BodyTooLarge { .. } => "body-too-large",
            Self::BadRequest(_) => "bad-request",
            Self::UnknownUpstream(_) => "no-upstream",
        }
    }

    fn upstream(&self) -> Option<&str> {
        match self {
            Self::Connect { upstream, .. }
            | Self::Timeout { upstream, .. }
            | Self::Upstream { upstream, .. } => Some(upstream),
            Self::UnknownUpstream(name) => Some(name),
            Self::BodyTooLarge { .. } | Self::BadRequest(_) => None,
        }
    }

    /// The client's answer: status, a one-line text body and the cause headers.
    pub fn into_response(self) -> Response<ProxyBody> {
        let status = self.status();
        let text = match &self {
            Self::Connect { upstream, .. } => {
                format!("502 Bad Gateway: upstream `{upstream}` is unreachable\n")
            }
            Self::Timeout { upstream, .. } => {
                format!("504 Gateway Timeout: upstream `{upstream}` did not answer in time\n")
            }
            Self::Upstream { upstream, .. } => {
                format!("502 Bad Gateway: upstream `{upstream}` failed to answer\n")
            }
            Self::UnknownUpstream(upstream) => {
                format!("502 Bad Gateway: no upstream `{upstream}`\n")
            }
            Self::BodyTooLarge { limit } => {
                format!("413 Payload Too Large: request bodies are limited to {limit} bytes here\n")
            }
            Self::BadRequest(why) => format!("400 Bad Request: {why}\n"),
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
        headers.insert("x-strangler-error", HeaderValue::from_static(self.cause()));
        if let Some(value) = self.upstream().and_then(|u| HeaderValue::from_str(u).ok()) {
            headers.insert("x-strangler-upstream", value);
        }
        if matches!(self, Self::BadRequest(_) | Self::BodyTooLarge { .. }) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_status_and_cause() {
        let r = ForwardError::Timeout {
            upstream: "legacy".into(),
            timeout_ms: 5,
        }
        .into_response();
        assert_eq!(r.status(), 504);
        assert_eq!(r.headers()["x-strangler-error"], "upstream-timeout");
        assert_eq!(r.headers()["x-strangler-upstream"], "legacy");
        let r = ForwardError::Connect {
            upstream: "misc".into(),
            detail: "refused".into(),
        }
        .into_response();
        assert_eq!(r.status(), 502);
        assert_eq!(r.headers()["x-strangler-error"], "upstream-connect");
        let r = ForwardError::BodyTooLarge { limit: 10 }.into_response();
        assert_eq!(r.status(), 413);
        assert_eq!(r.headers()["connection"], "close");
    }
}
