//! Checks and facts read off the request head before routing: what must never be forwarded
//! (DESIGN.md; HTTP-EDGE.md), the Host asked for, the declared length.

use http::{Request, Version, header};

use crate::forward::ForwardError;
use crate::listen::ClientBody;

/// Refuses requests that must never be forwarded (DESIGN.md; HTTP-EDGE.md).
pub(super) fn request_filter(request: &Request<ClientBody>) -> Result<(), ForwardError> {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Err(ForwardError::BadRequest("more than one Host header"));
    }
    if request.version() == Version::HTTP_11 && hosts == 0 {
        return Err(ForwardError::BadRequest("HTTP/1.1 request without Host"));
    }
    if let (Some(authority), Some(host)) = (
        request.uri().authority(),
        request.headers().get(header::HOST),
    ) {
        if request.version() <= Version::HTTP_11
            && !authority
                .as_str()
                .eq_ignore_ascii_case(host.to_str().unwrap_or_default())
        {
            return Err(ForwardError::BadRequest(
                "absolute-form target and Host disagree",
            ));
        }
    }
    if request.headers().contains_key(header::TRANSFER_ENCODING)
        && request.headers().contains_key(header::CONTENT_LENGTH)
    {
        return Err(ForwardError::BadRequest(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    Ok(())
}

/// The Host the client asked for, without port, lower-case.
pub(super) fn request_host(parts: &http::request::Parts) -> Option<String> {
    let raw = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))?;
    let without_port = match raw.rsplit_once(':') {
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => raw,
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => raw,
    };
    Some(without_port.to_ascii_lowercase())
}

/// The Content-Length the client declared, if it is a number.
pub(super) fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(host: &str) -> http::request::Parts {
        Request::builder()
            .uri("/")
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn host_without_port() {
        assert_eq!(
            request_host(&parts("Shop.Example:8080")).as_deref(),
            Some("shop.example")
        );
        assert_eq!(
            request_host(&parts("shop.example")).as_deref(),
            Some("shop.example")
        );
        assert_eq!(request_host(&parts("[::1]:8080")).as_deref(), Some("[::1]"));
    }
}
