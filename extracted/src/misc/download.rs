//! `GET /misc/download?bytes=N`: N bytes of the monolith's deterministic pattern (byte `i`
//! is `i % 251`), streamed in 64 KiB chunks with an exact `Content-Length` and an ETag named
//! after N. Never compressed (`application/octet-stream`), never buffered.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::header::{ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_TYPE, ETAG};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use serde::Deserialize;

use super::error::Problem;

/// The largest download: 100 MiB.
pub(crate) const MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Size when `bytes` is absent: 1 MiB.
const DEFAULT_BYTES: u64 = 1024 * 1024;
/// Bytes per body frame.
const CHUNK: usize = 64 * 1024;
/// The pattern's period; prime, so chunk boundaries never line up with it.
const PERIOD: u64 = 251;

/// The query string.
#[derive(Debug, Deserialize)]
pub(crate) struct DownloadQuery {
    bytes: Option<String>,
}

/// `GET /misc/download?bytes=N` → N pattern bytes; 400 above 100 MiB or for a bad N.
pub(crate) async fn download(
    query: Result<Query<DownloadQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|r| Problem::bad_request("bad_query", r.body_text()))?;
    let size = match query.bytes.as_deref() {
        None => DEFAULT_BYTES,
        Some(text) => text.trim().parse::<u64>().map_err(|_| {
            Problem::bad_request(
                "bad_bytes",
                format!("bytes must be a whole number, got {text:?}"),
            )
        })?,
    };
    if size > MAX_BYTES {
        return Err(Problem::bad_request(
            "too_large",
            format!("bytes must be at most {MAX_BYTES}"),
        ));
    }
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"download.bin\"".to_owned(),
            ),
            (ACCEPT_RANGES, "none".to_owned()),
            // The content depends only on N, so the ETag can be named without hashing it.
            (ETAG, format!("\"pattern-251-{size}\"")),
        ],
        Body::new(PatternBody {
            offset: 0,
            remaining: size,
        }),
    )
        .into_response())
}

/// One period of the pattern plus a chunk, so any chunk is a zero-copy slice of it.
fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        (0..PERIOD + CHUNK as u64)
            .map(|i| (i % PERIOD) as u8)
            .collect::<Vec<u8>>()
            .into()
    })
}

/// A body that yields the pattern chunk by chunk and knows its exact length.
struct PatternBody {
    /// Position of the next byte in the whole download.
    offset: u64,
    /// Bytes still to send.
    remaining: u64,
}

impl http_body::Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let len = self.remaining.min(CHUNK as u64) as usize;
        let start = (self.offset % PERIOD) as usize;
        let data = pattern().slice(start..start + len);
        self.offset += len as u64;
        self.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::misc::test_support::{call, get, router};

    #[tokio::test]
    async fn streams_the_pattern_with_content_length() {
        let size = 3 * 64 * 1024 + 1000;
        let request = Request::get(format!("/misc/download?bytes={size}"))
            .body(Body::empty())
            .unwrap();
        let response = router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-length"],
            size.to_string().as_str()
        );
        let mut body = response.into_body();
        let (mut frames, mut data) = (0, Vec::new());
        while let Some(frame) = body.frame().await {
            frames += 1;
            data.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames, 4);
        assert_eq!(data.len(), size);
        assert!(data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    }

    #[tokio::test]
    async fn is_never_gzipped_and_rejects_bad_sizes() {
        let app = router();
        let req = Request::get("/misc/download?bytes=100000")
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap();
        let reply = call(&app, req).await;
        assert!(reply.headers.get("content-encoding").is_none());
        assert_eq!(reply.body.len(), 100_000);
        assert_eq!(reply.header("etag"), "\"pattern-251-100000\"");
        let too_big = get(&app, "/misc/download?bytes=104857601").await;
        assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            get(&app, "/misc/download?bytes=-5").await.status,
            StatusCode::BAD_REQUEST
        );
    }
}
