//! Thumbnails: seed pictures at several sizes, posted PNG/JPEG bodies, every error answer,
//! and the one known gap — pictures uploaded to the monolith after it started.

use axum::http::Method;
use image::ImageFormat;

use super::{Case, assert_equal_answers, both, candidate, differences, legacy};
use crate::misc::test_support::encoded_image;

fn post(query: &str, content_type: Option<&str>, body: Vec<u8>) -> Case {
    let case = Case::new(Method::POST, format!("/misc/thumbnail{query}")).body(body);
    match content_type {
        Some(content_type) => case.header("content-type", content_type),
        None => case,
    }
}

#[tokio::test]
async fn seed_picture_thumbnails_match() {
    let mut cases = Vec::new();
    for image in ["img-1", "img-2", "img-3"] {
        for size in [
            "",
            "&w=32&h=32",
            "&w=1024&h=1024",
            "&w=100&h=15",
            "&w=1",
            "&h=%207%20",
            "&w=",
        ] {
            cases.push(Case::get(format!("/misc/thumbnail?image={image}{size}")));
        }
    }
    cases.push(Case::new(Method::HEAD, "/misc/thumbnail?image=img-1"));
    cases.push(Case::get("/misc/thumbnail?image=img-3&w=512").header("accept-encoding", "gzip"));
    cases.push(Case::get("/misc/thumbnail?image=img-2").header("if-none-match", "*"));
    assert_equal_answers(&cases).await;
}

#[tokio::test]
async fn thumbnail_errors_match() {
    let mut cases: Vec<Case> = ["w=0", "w=1025", "h=-3", "w=abc", "h=1.5", "w=99999999999"]
        .iter()
        .map(|q| Case::get(format!("/misc/thumbnail?image=img-1&{q}")))
        .collect();
    cases.extend([
        Case::get("/misc/thumbnail"),
        Case::get("/misc/thumbnail?image="),
        Case::get("/misc/thumbnail?image=img-404"),
        Case::get("/misc/thumbnail?image=img-404&w=0"),
        Case::get("/misc/thumbnail?image=img-1&image=img-2"),
        Case::new(Method::PUT, "/misc/thumbnail"),
    ]);
    assert_equal_answers(&cases).await;
}

#[tokio::test]
async fn posted_bodies_match() {
    let png = encoded_image(200, 100, ImageFormat::Png);
    let jpeg = encoded_image(40, 80, ImageFormat::Jpeg);
    let cases = [
        post("", Some("image/png"), png.clone()),
        post("?w=50&h=50", Some("image/png"), png.clone()),
        post("?w=20&h=20", Some("image/jpeg"), jpeg.clone()),
        post("?w=300&h=300", Some("image/jpg"), jpeg.clone()),
        post("?w=64", Some("application/octet-stream"), png.clone()),
        post("?w=64", None, png.clone()),
        post("?w=64", Some("IMAGE/PNG; charset=binary"), png.clone()),
        post("", Some("text/plain"), b"hi".to_vec()),
        post("", Some("image/png"), b"not a picture".to_vec()),
        post("", Some("image/png"), png[..40].to_vec()),
        post("", Some("image/gif"), png.clone()),
        post("", Some("image/png"), Vec::new()),
        post("?w=5000", Some("image/png"), png.clone()),
        post("?w=0", Some("text/plain"), b"hi".to_vec()),
        post("", Some("image/png"), vec![0x89; 20 * 1024 * 1024 + 1]),
    ];
    assert_equal_answers(&cases).await;
}

#[tokio::test]
async fn pictures_uploaded_to_the_monolith_are_unknown_here_like_any_unknown_id() {
    let (legacy, candidate) = (legacy(), candidate(false));
    let ask = Case::get("/misc/thumbnail?image=img-4").header("x-request-id", "fixed");
    // Before the upload, both answer the monolith's "unknown image".
    let before = both(&legacy, &candidate, &ask).await;
    assert_eq!(before.legacy.status, 404);
    assert!(
        differences(&before).is_empty(),
        "{:?}",
        differences(&before)
    );

    let upload = Case::new(Method::POST, "/images")
        .header("content-type", "image/png")
        .body(encoded_image(30, 20, ImageFormat::Png));
    let created = crate::misc::test_support::call(&legacy, upload.request()).await;
    assert_eq!(created.json()["id"], "img-4");

    // After it, the monolith knows img-4; the service answers exactly its "unknown image"
    // (the event-driven copy of uploads comes later) — the expected difference.
    let after = both(&legacy, &candidate, &ask).await;
    assert_eq!(after.legacy.status, 200);
    assert_eq!(after.candidate.status, before.legacy.status);
    assert_eq!(after.candidate.headers, before.legacy.headers);
    assert_eq!(after.candidate.body, before.legacy.body);
}
