//! gzip for text-like answers larger than 1 KiB, when the client accepts it — the monolith's
//! rule, with the same `tower_http` layer so the same answers are compressed.
//!
//! Images and the octet-stream download are never compressed. A compressed body is a
//! different representation, so its ETag is made weak (`W/"…"`), as the monolith does.

use axum::extract::Request;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::Predicate;

/// Bodies of at most this many bytes go out uncompressed.
const MIN_COMPRESSED_SIZE: u64 = 1024;

/// Whether answers with these headers may ever be compressed (by content type).
fn compressible(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    !essence.is_empty() && !essence.starts_with("image/") && essence != "application/octet-stream"
}

/// Add `Vary: Accept-Encoding` to answers whose type may be compressed, compressed or not,
/// so caches keep the two representations apart.
pub(crate) fn add_vary(headers: &mut HeaderMap) {
    let already = headers.get_all(VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
    });
    if compressible(headers) && !already {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// The compression decision: a compressible type and more than 1 KiB (or unknown length).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorthCompressing;

impl Predicate for WorthCompressing {
    fn should_compress<B>(&self, response: &http::Response<B>) -> bool
    where
        B: http_body::Body,
    {
        let size = response.body().size_hint().exact().or_else(|| {
            response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        });
        compressible(response.headers()) && size.is_none_or(|size| size > MIN_COMPRESSED_SIZE)
    }
}

/// The gzip layer with the monolith's predicate.
pub(crate) fn layer() -> CompressionLayer<WorthCompressing> {
    CompressionLayer::new().compress_when(WorthCompressing)
}

/// After compression: a gzipped answer's strong ETag becomes weak.
pub(crate) async fn mark_compressed(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.headers().contains_key(CONTENT_ENCODING) {
        let weak = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|tag| tag.starts_with('"'))
            .and_then(|tag| HeaderValue::from_str(&format!("W/{tag}")).ok());
        if let Some(weak) = weak {
            response.headers_mut().insert(ETAG, weak);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use flate2::read::GzDecoder;

    use crate::misc::test_support::{Reply, call, get, router};

    fn gzip_get(uri: &str) -> Request<Body> {
        Request::get(uri)
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap()
    }

    fn gunzip(reply: &Reply) -> String {
        let mut text = String::new();
        GzDecoder::new(reply.body.as_ref())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[tokio::test]
    async fn large_feeds_are_gzipped_with_vary_and_a_weak_etag() {
        let app = router();
        let plain = get(&app, "/misc/feed.rss").await;
        assert!(plain.body.len() > 1024);
        assert!(plain.headers.get("content-encoding").is_none());
        assert_eq!(plain.header("vary"), "Accept-Encoding");
        let zipped = call(&app, gzip_get("/misc/feed.rss")).await;
        assert_eq!(zipped.status, StatusCode::OK);
        assert_eq!(zipped.header("content-encoding"), "gzip");
        assert_eq!(zipped.header("vary"), "Accept-Encoding");
        assert_eq!(zipped.header("etag"), format!("W/{}", plain.header("etag")));
        assert_eq!(gunzip(&zipped), plain.text());
    }

    #[tokio::test]
    async fn small_answers_and_images_are_not_gzipped() {
        let app = router();
        let small = call(&app, gzip_get("/misc/health")).await;
        assert!(small.headers.get("content-encoding").is_none());
        assert_eq!(small.header("vary"), "Accept-Encoding");
        let image = call(&app, gzip_get("/misc/thumbnail?image=img-3&w=512&h=512")).await;
        assert!(image.body.len() > 1024);
        assert!(image.headers.get("content-encoding").is_none());
        let csv = call(&app, gzip_get("/misc/export.csv?rows=1000")).await;
        assert_eq!(csv.header("content-encoding"), "gzip");
        assert_eq!(gunzip(&csv).lines().count(), 1001);
    }
}
