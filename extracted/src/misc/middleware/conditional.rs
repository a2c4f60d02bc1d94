//! Conditional GETs, as the monolith does them: a strong ETag (SHA-256 of the body) on every
//! complete 200 answer to GET/HEAD that does not already carry one, and `If-None-Match` →
//! 304 with no body.
//!
//! Streamed bodies (unknown length) are never buffered to hash them; handlers that stream
//! and still want an ETag (the download) set it themselves. A 304 carries the ETag its 200
//! would have carried — weak when that 200 would have been gzipped.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_LOCATION, ETAG, EXPIRES, IF_NONE_MATCH, SET_COOKIE,
    VARY,
};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower_http::compression::predicate::Predicate;

use super::compression::{WorthCompressing, add_vary};
use crate::misc::error::Problem;

/// Bodies larger than this are not hashed for an ETag.
const MAX_HASHED_BODY: u64 = 32 * 1024 * 1024;

/// Headers a 304 keeps from the 200 it stands for (RFC 9110 §15.4.5), plus `Set-Cookie`.
const KEPT_ON_304: [HeaderName; 6] = [
    CACHE_CONTROL,
    CONTENT_LOCATION,
    ETAG,
    EXPIRES,
    VARY,
    SET_COOKIE,
];

/// Add ETag and `Vary`, and turn a matching `If-None-Match` into 304 Not Modified.
pub(crate) async fn conditional(request: Request, next: Next) -> Response {
    let cacheable = matches!(*request.method(), Method::GET | Method::HEAD);
    let if_none_match = request.headers().get(IF_NONE_MATCH).cloned();
    let accepts_gzip = accepts_gzip(request.headers());
    let mut response = next.run(request).await;
    add_vary(response.headers_mut());
    if !cacheable || response.status() != StatusCode::OK {
        return response;
    }

    let (mut parts, body) = response.into_parts();
    let body = if parts.headers.contains_key(ETAG) {
        body
    } else {
        match body.size_hint().exact() {
            Some(size) if size <= MAX_HASHED_BODY => {
                let bytes = match body.collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(err) => {
                        tracing::error!(error = %err, "could not read a response body to hash it");
                        return Problem::internal().into_response();
                    }
                };
                let tag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
                if let Ok(tag) = HeaderValue::from_str(&tag) {
                    parts.headers.insert(ETAG, tag);
                }
                Body::from(bytes)
            }
            _ => return Response::from_parts(parts, body),
        }
    };

    let fresh = match (&if_none_match, parts.headers.get(ETAG)) {
        (Some(condition), Some(etag)) => matches_any(condition, etag),
        _ => false,
    };
    if !fresh {
        return Response::from_parts(parts, body);
    }
    // The 200 this 304 stands for would have been gzipped, with a weak ETag (RFC 9110
    // §15.4.5: a 304 carries the ETag its 200 would carry). The gzip layer never sees a 304.
    if accepts_gzip && WorthCompressing.should_compress(&Response::from_parts(parts.clone(), body))
    {
        let weak = parts
            .headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|tag| tag.starts_with('"'))
            .and_then(|tag| HeaderValue::from_str(&format!("W/{tag}")).ok());
        if let Some(weak) = weak {
            parts.headers.insert(ETAG, weak);
        }
    }
    let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
    for name in KEPT_ON_304 {
        for value in parts.headers.get_all(&name) {
            not_modified
                .headers_mut()
                .append(name.clone(), value.clone());
        }
    }
    not_modified
}

/// Whether `Accept-Encoding` names gzip (as the monolith judges it: any listed `gzip`).
fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            coding
                .split(';')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip"))
        })
}

/// Weak comparison of `etag` against an `If-None-Match` list (or `*`).
fn matches_any(condition: &HeaderValue, etag: &HeaderValue) -> bool {
    let (Ok(condition), Ok(etag)) = (condition.to_str(), etag.to_str()) else {
        return false;
    };
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let etag = opaque(etag);
    condition
        .split(',')
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == etag)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{HeaderValue, Request, StatusCode};

    use super::matches_any;
    use crate::misc::test_support::{Reply, call, get, router};

    async fn revalidate(app: &axum::Router, uri: &str, etag: &str) -> Reply {
        let req = Request::get(uri)
            .header("if-none-match", etag)
            .body(Body::empty())
            .unwrap();
        call(app, req).await
    }

    #[test]
    fn weak_comparison_and_lists() {
        let etag = HeaderValue::from_static("\"abc\"");
        for condition in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert!(
                matches_any(&HeaderValue::from_static(condition), &etag),
                "{condition}"
            );
        }
        assert!(!matches_any(&HeaderValue::from_static("\"abd\""), &etag));
    }

    #[tokio::test]
    async fn answers_revalidate_to_304() {
        let app = router();
        for uri in [
            "/misc/feed.atom",
            "/misc/currency?from=USD&to=EUR&amount=1",
            "/misc/download?bytes=10",
        ] {
            let first = get(&app, uri).await;
            let etag = first.header("etag").to_owned();
            assert!(etag.starts_with('"') && etag.len() > 2, "{uri}: {etag:?}");
            let again = revalidate(&app, uri, &etag).await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
            assert!(again.body.is_empty());
            assert_eq!(again.header("etag"), etag);
            assert!(again.headers.get("content-type").is_none());
            assert_eq!(
                revalidate(&app, uri, "\"something-else\"").await.status,
                StatusCode::OK
            );
        }
    }

    #[tokio::test]
    async fn a_304_for_a_gzip_client_carries_the_weak_etag() {
        let app = router();
        let etag = get(&app, "/misc/feed.rss").await.header("etag").to_owned();
        let req = Request::get("/misc/feed.rss")
            .header("if-none-match", &etag)
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap();
        let again = call(&app, req).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert_eq!(again.header("etag"), format!("W/{etag}"));
        let small = Request::get("/misc/health")
            .header("if-none-match", "*")
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap();
        assert!(call(&app, small).await.header("etag").starts_with('"'));
    }

    #[tokio::test]
    async fn errors_and_streams_get_no_etag() {
        let app = router();
        assert!(
            get(&app, "/misc/currency?from=USD")
                .await
                .headers
                .get("etag")
                .is_none()
        );
        assert!(
            get(&app, "/misc/export.csv")
                .await
                .headers
                .get("etag")
                .is_none()
        );
    }
}
