//! `POST /api/imports`: take a request body of any size, frame by frame, and answer with its
//! length and SHA-256 — the shop's stand-in for a bulk import. The body is never held whole.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Shop;
use crate::error::Problem;

/// What an import answers.
#[derive(Debug, Serialize)]
pub(crate) struct Imported {
    bytes: u64,
    sha256: String,
    received_at: String,
}

/// `POST /api/imports` → `{"bytes": n, "sha256": "hex", "received_at": …}`.
pub(crate) async fn import(
    State(shop): State<Shop>,
    body: Body,
) -> Result<Json<Imported>, Problem> {
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let chunk = frame.map_err(|err| {
            Problem::bad_request("bad_body", format!("the request body broke off: {err}"))
        })?;
        bytes += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok(Json(Imported {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        received_at: shop.clock().timestamp(),
    }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use bytes::Bytes;
    use futures_util::stream;
    use sha2::{Digest, Sha256};

    use crate::test_support::{call, router};

    #[tokio::test]
    async fn hashes_a_streamed_10_mib_body() {
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        let chunks = 160; // 10 MiB
        let mut expected = Sha256::new();
        for _ in 0..chunks {
            expected.update(&chunk);
        }
        let frames = stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        let req = Request::post("/api/imports")
            .header("content-type", "application/octet-stream")
            .body(Body::from_stream(frames))
            .unwrap();
        let reply = call(&router(), req).await;
        assert_eq!(reply.status, StatusCode::OK);
        let json = reply.json();
        assert_eq!(json["bytes"], 10 * 1024 * 1024);
        assert_eq!(json["sha256"], hex::encode(expected.finalize()));
    }

    #[tokio::test]
    async fn empty_body_hashes_to_the_empty_digest() {
        let req = Request::post("/api/imports").body(Body::empty()).unwrap();
        let json = call(&router(), req).await.json();
        assert_eq!(json["bytes"], 0);
        assert_eq!(
            json["sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
