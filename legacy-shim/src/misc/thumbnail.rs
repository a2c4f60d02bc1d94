//! `/misc/thumbnail`: a PNG thumbnail of a stored image (`GET ?image=`) or of the request
//! body (`POST`), keeping the aspect ratio and fitting inside `w`×`h` (default 128×128,
//! at most 1024 each way).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use image::imageops::FilterType;
use serde::Deserialize;

use crate::Shop;
use crate::error::Problem;
use crate::images::{decode, encode_png, is_image_type, media_type};

/// Size used when `w` or `h` is absent.
const DEFAULT_SIZE: u32 = 128;
/// The largest `w` or `h` accepted.
const MAX_SIZE: u32 = 1024;

/// The query string of both thumbnail routes; numbers as text so bad ones get our error.
#[derive(Debug, Deserialize)]
pub(crate) struct ThumbnailQuery {
    image: Option<String>,
    w: Option<String>,
    h: Option<String>,
}

/// `GET /misc/thumbnail?image={id}&w=&h=` → PNG; 400 bad sizes, 404 unknown image.
pub(crate) async fn from_store(
    State(shop): State<Shop>,
    query: Result<Query<ThumbnailQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let query = parse_query(query)?;
    let (w, h) = sizes(&query)?;
    let Some(id) = query.image.filter(|id| !id.is_empty()) else {
        return Err(Problem::bad_request("missing_image", "give ?image={id}"));
    };
    let Some(image) = shop.store().image(&id)? else {
        return Err(Problem::not_found(format!("no image {id}")));
    };
    thumbnail(&image.data, w, h)
}

/// `POST /misc/thumbnail?w=&h=` with a PNG/JPEG body → PNG; 415 for other types or bytes
/// that do not decode.
pub(crate) async fn from_body(
    headers: HeaderMap,
    query: Result<Query<ThumbnailQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let query = parse_query(query)?;
    let (w, h) = sizes(&query)?;
    if let Some(declared) = media_type(headers.get(CONTENT_TYPE)) {
        if !is_image_type(&declared) && declared != "application/octet-stream" {
            return Err(Problem::unsupported_media_type(format!(
                "cannot make a thumbnail of {declared}; send image/png or image/jpeg"
            )));
        }
    }
    let body = body
        .map_err(|rejection| Problem::new(rejection.status(), "bad_body", rejection.body_text()))?;
    thumbnail(&body, w, h)
}

fn parse_query(
    query: Result<Query<ThumbnailQuery>, QueryRejection>,
) -> Result<ThumbnailQuery, Problem> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| Problem::bad_request("bad_query", rejection.body_text()))
}

fn sizes(query: &ThumbnailQuery) -> Result<(u32, u32), Problem> {
    Ok((
        size("w", query.w.as_deref())?,
        size("h", query.h.as_deref())?,
    ))
}

fn size(name: &str, text: Option<&str>) -> Result<u32, Problem> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_SIZE);
    };
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_SIZE).contains(&n) => Ok(n),
        _ => Err(Problem::bad_request(
            "bad_size",
            format!("{name} must be a whole number from 1 to {MAX_SIZE}, got {text:?}"),
        )),
    }
}

fn thumbnail(data: &[u8], w: u32, h: u32) -> Result<Response, Problem> {
    let (picture, _) = decode(data)?;
    let png = encode_png(&picture.resize(w, h, FilterType::Triangle))?;
    Ok((
        [
            (CONTENT_TYPE, "image/png"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use image::ImageFormat;

    use crate::test_support::{Reply, call, encoded_image, get, png, router};

    fn dimensions(reply: &Reply) -> (u32, u32) {
        assert_eq!(reply.header("content-type"), "image/png");
        let picture = image::load_from_memory_with_format(&reply.body, ImageFormat::Png).unwrap();
        (picture.width(), picture.height())
    }

    fn post(uri: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
        Request::post(uri)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn stored_images_fit_the_box_keeping_their_ratio() {
        let app = router();
        // img-1 is 64×48.
        assert_eq!(
            dimensions(&get(&app, "/misc/thumbnail?image=img-1").await),
            (128, 96)
        );
        assert_eq!(
            dimensions(&get(&app, "/misc/thumbnail?image=img-1&w=32&h=32").await),
            (32, 24)
        );
        assert_eq!(
            dimensions(&get(&app, "/misc/thumbnail?image=img-1&w=100&h=15").await),
            (20, 15)
        );
    }

    #[tokio::test]
    async fn posted_bodies_are_thumbnailed() {
        let app = router();
        let reply = call(
            &app,
            post("/misc/thumbnail?w=50&h=50", "image/png", png(200, 100)),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(dimensions(&reply), (50, 25));
        let jpeg = encoded_image(40, 80, ImageFormat::Jpeg);
        let reply = call(&app, post("/misc/thumbnail?w=20&h=20", "image/jpeg", jpeg)).await;
        assert_eq!(dimensions(&reply), (10, 20));
    }

    #[tokio::test]
    async fn bad_sizes_unknown_images_and_bad_bodies() {
        let app = router();
        for query in ["w=0", "w=1025", "h=-3", "w=abc", "h=1.5"] {
            let reply = get(&app, &format!("/misc/thumbnail?image=img-1&{query}")).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(reply.json()["code"], "bad_size");
        }
        assert_eq!(
            get(&app, "/misc/thumbnail?image=img-404").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&app, "/misc/thumbnail").await.status,
            StatusCode::BAD_REQUEST
        );
        let text = call(&app, post("/misc/thumbnail", "text/plain", b"hi".to_vec())).await;
        assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let junk = call(
            &app,
            post("/misc/thumbnail", "image/png", b"not a picture".to_vec()),
        )
        .await;
        assert_eq!(junk.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(junk.json()["code"], "unsupported_media_type");
        let bad_size = call(&app, post("/misc/thumbnail?w=5000", "image/png", png(4, 4))).await;
        assert_eq!(bad_size.status, StatusCode::BAD_REQUEST);
    }
}
