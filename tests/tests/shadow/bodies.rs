//! Large request bodies: forwarded whole to legacy, never mirrored.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde_json::Value;
use sha2::{Digest, Sha256};
use system_tests::exchange::{Client, Req};
use system_tests::findings::{accounted_for, diffs, skipped};
use system_tests::{Legacy, Proxy, named, routes_toml};

use super::NO_HANG;

/// The upload: 5 MiB.
const UPLOAD: usize = 5 * 1024 * 1024;

/// A 5 MiB body in 64 KiB chunks, and its SHA-256.
fn upload() -> (Vec<Bytes>, String) {
    let data: Vec<u8> = (0..UPLOAD).map(|i| (i % 251) as u8).collect();
    let sha = hex::encode(Sha256::digest(&data));
    let chunks = data.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
    (chunks, sha)
}

/// `POST /api/imports` of 5 MiB, streamed with or without `Content-Length`, on a route that
/// mirrors writes: legacy gets every byte, the candidate nothing, and the skip is counted.
async fn large_upload_is_forwarded_but_not_mirrored(content_length: bool) {
    let legacy = Legacy::stable().await;
    let candidate = named::start("candidate").await;
    let proxy = Proxy::start(&routes_toml(
        &legacy.url(),
        &format!(
            r#"[upstreams.candidate]
url = "{candidate}"

[[routes]]
id = "imports"
match = {{ path = "/api/imports", methods = ["POST"] }}
mode = "shadow"
extracted = "candidate"
shadow = {{ writes = "mirror" }}
"#,
            candidate = candidate.url()
        ),
    ))
    .await;
    let (chunks, sha) = upload();
    let mut req =
        Req::new("POST", "/api/imports").header("content-type", "application/octet-stream");
    if content_length {
        req = req.header("content-length", UPLOAD.to_string());
    }
    let frames = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(Frame::data(c))),
    );
    let answer = tokio::time::timeout(
        NO_HANG,
        Client::h1(proxy.handle.addr()).send_body(&req, StreamBody::new(frames)),
    )
    .await
    .expect("the upload did not finish")
    .expect("the upload failed");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let imported: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(imported["bytes"], UPLOAD, "{imported}");
    assert_eq!(imported["sha256"], sha.as_str(), "{imported}");

    let s = accounted_for(&proxy, "imports", 1).await;
    assert_eq!(skipped(&s, "body_too_large"), 1, "{s:#}");
    let records = diffs(&proxy, "route=imports").await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["verdict"], "skipped");
    assert_eq!(records[0]["reason"], "body_too_large");
    assert_eq!(records[0]["method"], "POST");
    assert_eq!(records[0]["path"], "/api/imports");
    assert_eq!(candidate.hits(), 0, "the candidate got a request");
    assert_eq!(candidate.body_bytes(), 0, "the candidate got body bytes");
    proxy.stop().await;
    legacy.stop().await;
}

#[tokio::test]
async fn a_large_upload_with_content_length_is_forwarded_whole_and_not_mirrored() {
    large_upload_is_forwarded_but_not_mirrored(true).await;
}

#[tokio::test]
async fn a_large_chunked_upload_is_forwarded_whole_and_not_mirrored() {
    large_upload_is_forwarded_but_not_mirrored(false).await;
}
