//! Conditional GETs: a strong ETag (SHA-256 of the body) on every complete 200 answer to
//! GET/HEAD that does not already carry one, and `If-None-Match` → 304 with no body.
//!
//! Streamed bodies (unknown length) are never buffered to hash them; handlers that stream
//! and still want an ETag (the download) set it themselves.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LOCATION, ETAG, EXPIRES, IF_NONE_MATCH, SET_COOKIE, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::compression::{WorthCompressing, add_vary};
use crate::error::Problem;
use tower_http::compression::predicate::Predicate;

/// Bodies larger than this are not hashed for an ETag.
const MAX_HASHED_BODY: u64 = 32 * 1024 * 1024;

/// Headers a 304 keeps from the 200 it stands for (RFC 9110 §15.4.5), plus `Set-Cookie`.
const KEPT_ON_304: [axum::http::HeaderName; 6] = [
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
    let accepts_gzip = request
        .headers()
        .get_all(axum::http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            coding
                .split(';')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip"))
        });
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
    let gzipped = accepts_gzip
        && WorthCompressing.should_compress(&Response::from_parts(parts.clone(), body));
    if gzipped {
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
    use crate::test_support::{Reply, call, get, router};

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
    async fn pages_api_and_images_revalidate_to_304() {
        let app = router();
        for uri in [
            "/products/RED-CHAIR",
            "/api/products/RED-CHAIR",
            "/images/img-1",
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
            let stale = revalidate(&app, uri, "\"something-else\"").await;
            assert_eq!(stale.status, StatusCode::OK, "{uri}");
        }
    }

    #[tokio::test]
    async fn etag_is_the_hash_of_the_body_and_changes_with_it() {
        let app = router();
        let before = get(&app, "/api/products/PINE-SHELF")
            .await
            .header("etag")
            .to_owned();
        let req = crate::test_support::json_request(
            "PUT",
            "/api/products/PINE-SHELF",
            serde_json::json!({"stock": 1}),
        );
        call(&app, req).await;
        let after = get(&app, "/api/products/PINE-SHELF").await;
        assert_ne!(after.header("etag"), before);
        assert_eq!(
            revalidate(&app, "/api/products/PINE-SHELF", &before)
                .await
                .status,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn writes_and_errors_get_no_etag() {
        let app = router();
        assert!(
            get(&app, "/api/products/NOPE")
                .await
                .headers
                .get("etag")
                .is_none()
        );
        let head = call(
            &app,
            Request::head("/api/products").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("etag"),
            get(&app, "/api/products").await.header("etag")
        );
    }
}
