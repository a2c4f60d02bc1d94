//! `/misc/thumbnail`: a PNG thumbnail of a stored picture (`GET ?image=`) or of the request
//! body (`POST`), keeping the aspect ratio and fitting inside `w`×`h` (default 128×128, at
//! most 1024 each way) — the monolith's sizes, filter, output format and error answers.
//!
//! Stored pictures: the service knows the monolith's seed pictures (`catalogue`) and the
//! pictures uploaded to the monolith since, which the thumbnail worker copies into the picture
//! store (`pictures`) from the bus with the [`STANDARD_SIZES`] rendered ahead of time. An id in
//! neither is answered exactly as the monolith answers an unknown id (404 `not_found`) — also
//! for the moment between an upload and the worker handling its event.
//!
//! Only PNG and JPEG are accepted, judged by the bytes, and decoding is bounded so a small
//! file cannot make the service allocate gigabytes.

use std::io::Cursor;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::Deserialize;

use super::Service;
use super::error::Problem;

/// The largest thumbnail source accepted in a request body.
pub(crate) const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// The largest width or height decoded.
const MAX_DIMENSION: u32 = 8192;
/// The most memory one decode may allocate.
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// Size used when `w` or `h` is absent.
const DEFAULT_SIZE: u32 = 128;
/// The largest `w` or `h` accepted.
const MAX_SIZE: u32 = 1024;
/// Thumbnails the worker renders ahead of time for an uploaded picture: the default box, and
/// the widths the shop's pages show pictures at (48 on the home page, 240 on a product page).
pub(crate) const STANDARD_SIZES: [(u32, u32); 3] =
    [(DEFAULT_SIZE, DEFAULT_SIZE), (48, 48), (240, 240)];

/// The query string of both thumbnail routes; numbers as text so bad ones get our error.
#[derive(Debug, Deserialize)]
pub(crate) struct ThumbnailQuery {
    image: Option<String>,
    w: Option<String>,
    h: Option<String>,
}

/// Why a picture could not be turned into a thumbnail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ThumbnailError {
    /// The bytes are neither PNG nor JPEG.
    #[error("the body is not a PNG or JPEG image")]
    NotAnImage,
    /// PNG or JPEG by their magic, but they do not decode (or exceed the limits).
    #[error("the image could not be decoded: {0}")]
    Undecodable(#[source] image::ImageError),
    /// Encoding the thumbnail failed: our fault, not the client's.
    #[error("PNG encoding failed: {0}")]
    Encode(#[source] image::ImageError),
}

impl From<ThumbnailError> for Problem {
    fn from(err: ThumbnailError) -> Self {
        match err {
            ThumbnailError::NotAnImage | ThumbnailError::Undecodable(_) => {
                Problem::unsupported_media_type(err.to_string())
            }
            ThumbnailError::Encode(_) => {
                tracing::error!(error = %err, "thumbnail encoding failed");
                Problem::internal()
            }
        }
    }
}

/// `GET /misc/thumbnail?image={id}&w=&h=` → PNG; 400 bad sizes or no id, 404 unknown image.
pub(crate) async fn from_catalogue(
    State(service): State<Service>,
    query: Result<Query<ThumbnailQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let query = parse_query(query)?;
    let (w, h) = sizes(&query)?;
    let Some(id) = query.image.filter(|id| !id.is_empty()) else {
        return Err(Problem::bad_request("missing_image", "give ?image={id}"));
    };
    if let Some(store) = &service.options().pictures {
        if let Some(png) = store.thumbnail(&id, w, h).map_err(stored_failure)? {
            return Ok(png_answer(png));
        }
        if let Some(original) = store.original(&id).map_err(stored_failure)? {
            return respond(&decode(&original)?, w, h);
        }
    }
    let Some(picture) = service.catalogue().picture(&id) else {
        return Err(Problem::not_found(format!("no image {id}")));
    };
    respond(&picture, w, h)
}

/// A picture store that cannot be read is our failure, not the client's.
fn stored_failure(err: super::pictures::PictureError) -> Problem {
    tracing::error!(error = %err, "reading the picture store failed");
    Problem::internal()
}

/// `POST /misc/thumbnail?w=&h=` with a PNG/JPEG body → PNG; 415 for other declared types or
/// bytes that do not decode.
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
    respond(&decode(&body)?, w, h)
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

/// The media type of a header, lower-cased, without parameters.
fn media_type(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let essence = text.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// Whether a declared type is one we take as a raw image body.
fn is_image_type(media_type: &str) -> bool {
    matches!(media_type, "image/png" | "image/jpeg" | "image/jpg")
}

/// Decode PNG or JPEG bytes (sniffed from the bytes themselves), within the limits.
pub(crate) fn decode(data: &[u8]) -> Result<DynamicImage, ThumbnailError> {
    let format = match image::guess_format(data) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => format,
        _ => return Err(ThumbnailError::NotAnImage),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(limits);
    reader.decode().map_err(ThumbnailError::Undecodable)
}

/// The picture fitted into `w`×`h` (Triangle filter), as a cacheable PNG answer.
fn respond(picture: &DynamicImage, w: u32, h: u32) -> Result<Response, Problem> {
    Ok(png_answer(render(picture, w, h)?))
}

/// The picture fitted into `w`×`h` (Triangle filter) as PNG bytes: what the monolith sends.
pub(crate) fn render(picture: &DynamicImage, w: u32, h: u32) -> Result<Vec<u8>, ThumbnailError> {
    let mut png = Cursor::new(Vec::new());
    picture
        .resize(w, h, FilterType::Triangle)
        .write_to(&mut png, ImageFormat::Png)
        .map_err(ThumbnailError::Encode)?;
    Ok(png.into_inner())
}

/// A thumbnail's PNG bytes as the cacheable answer.
fn png_answer(png: Vec<u8>) -> Response {
    (
        [
            (CONTENT_TYPE, "image/png"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        png,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use image::ImageFormat;

    use crate::misc::test_support::{Reply, call, encoded_image, get, router};

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
    async fn seed_pictures_fit_the_box_keeping_their_ratio() {
        let app = router();
        // img-1 is 64×48.
        assert_eq!(
            dimensions(&get(&app, "/misc/thumbnail?image=img-1").await),
            (128, 96)
        );
        assert_eq!(
            dimensions(&get(&app, "/misc/thumbnail?image=img-1&w=100&h=15").await),
            (20, 15)
        );
    }

    #[tokio::test]
    async fn posted_bodies_are_thumbnailed() {
        let app = router();
        let png = encoded_image(200, 100, ImageFormat::Png);
        let reply = call(&app, post("/misc/thumbnail?w=50&h=50", "image/png", png)).await;
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
            get(&app, "/misc/thumbnail?image=img-4").await.status,
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
        assert_eq!(junk.json()["code"], "unsupported_media_type");
    }
}
