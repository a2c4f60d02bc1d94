//! Pictures: upload (`POST /images`, multipart or a raw PNG/JPEG body) and serving
//! (`GET /images/{id}` with a strong ETag), plus the decoding helpers `misc::thumbnail` uses.
//!
//! Only PNG and JPEG are accepted, judged by the bytes (not the declared type), and decoding is
//! bounded so a small file cannot make the shop allocate gigabytes.

use std::io::Cursor;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::Serialize;

use crate::Shop;
use crate::error::Problem;

/// The largest upload or thumbnail source accepted.
pub(crate) const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// The largest width or height decoded.
const MAX_DIMENSION: u32 = 8192;

/// `POST /images` and `GET /images/{id}`.
pub(crate) fn routes() -> Router<Shop> {
    Router::new()
        .route(
            "/images",
            post(upload).layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES)),
        )
        .route("/images/{id}", get(serve))
}

/// The media type of a request or response header, lower-cased, without parameters.
pub(crate) fn media_type(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let essence = text.split(';').next().unwrap_or("").trim();
    Some(essence.to_ascii_lowercase())
}

/// Whether a declared type is one we take as a raw image body.
pub(crate) fn is_image_type(media_type: &str) -> bool {
    matches!(media_type, "image/png" | "image/jpeg" | "image/jpg")
}

/// Decode PNG or JPEG bytes (sniffed from the bytes themselves); 415 otherwise.
pub(crate) fn decode(data: &[u8]) -> Result<(DynamicImage, ImageFormat), Problem> {
    let format = match image::guess_format(data) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => format,
        _ => {
            return Err(Problem::unsupported_media_type(
                "the body is not a PNG or JPEG image",
            ));
        }
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(256 * 1024 * 1024);
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(limits);
    let picture = reader.decode().map_err(|err| {
        Problem::unsupported_media_type(format!("the image could not be decoded: {err}"))
    })?;
    Ok((picture, format))
}

/// Encode a picture as PNG.
pub(crate) fn encode_png(picture: &DynamicImage) -> Result<Vec<u8>, Problem> {
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|err| {
            tracing::error!(error = %err, "PNG encoding failed");
            Problem::internal()
        })?;
    Ok(out.into_inner())
}

fn content_type_of(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "image/jpeg",
        _ => "image/png",
    }
}

/// `POST /images` — multipart (field `image`) or a raw `image/png`/`image/jpeg` body →
/// 201 with `Location` and the image's JSON description.
async fn upload(State(shop): State<Shop>, request: Request) -> Result<Response, Problem> {
    let declared = media_type(request.headers().get(CONTENT_TYPE)).unwrap_or_default();
    let data = if declared == "multipart/form-data" {
        image_field(
            Multipart::from_request(request, &shop)
                .await
                .map_err(|rejection| {
                    Problem::bad_request("bad_multipart", rejection.body_text())
                })?,
        )
        .await?
    } else if is_image_type(&declared) {
        Bytes::from_request(request, &shop)
            .await
            .map_err(|rejection| {
                Problem::new(rejection.status(), "bad_body", rejection.body_text())
            })?
    } else {
        return Err(Problem::unsupported_media_type(
            "send multipart/form-data with an `image` field, or an image/png or image/jpeg body",
        ));
    };
    let (picture, format) = decode(&data)?;
    let content_type = content_type_of(format);
    let meta = shop
        .store()
        .insert_image(content_type, picture.width(), picture.height(), &data)?;
    let url = format!("/images/{}", meta.id);
    let body = Uploaded {
        id: meta.id,
        url: url.clone(),
        width: meta.width,
        height: meta.height,
        content_type: meta.content_type,
        bytes: data.len(),
        created_at: meta.created_at,
    };
    Ok((StatusCode::CREATED, [(LOCATION, url)], Json(body)).into_response())
}

/// The answer to an upload.
#[derive(Debug, Serialize)]
struct Uploaded {
    id: String,
    url: String,
    width: u32,
    height: u32,
    content_type: String,
    bytes: usize,
    created_at: String,
}

/// The bytes of the multipart field named `image`.
async fn image_field(mut multipart: Multipart) -> Result<Bytes, Problem> {
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|err| Problem::new(err.status(), "bad_multipart", err.body_text()))?;
        let Some(field) = field else {
            return Err(Problem::bad_request(
                "missing_image",
                "the form has no `image` field",
            ));
        };
        if field.name() == Some("image") {
            return field
                .bytes()
                .await
                .map_err(|err| Problem::new(err.status(), "bad_multipart", err.body_text()));
        }
    }
}

/// `GET /images/{id}` — the stored bytes with their type and a strong ETag.
async fn serve(State(shop): State<Shop>, Path(id): Path<String>) -> Result<Response, Problem> {
    let Some(image) = shop.store().image(&id)? else {
        return Err(Problem::not_found(format!("no image {id}")));
    };
    let etag = format!("\"{}\"", image.meta.sha256);
    Ok((
        [
            (CONTENT_TYPE, image.meta.content_type),
            (ETAG, etag),
            (CACHE_CONTROL, "public, max-age=86400".to_owned()),
        ],
        image.data,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use image::ImageFormat;

    use crate::test_support::{call, encoded_image, get, png, router};

    fn multipart(field: &str, data: &[u8]) -> Request<Body> {
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.png\"\r\n\
                 Content-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        Request::post("/images")
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn multipart_upload_is_created_and_served_back() {
        let app = router();
        let data = png(30, 20);
        let created = call(&app, multipart("image", &data)).await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert_eq!(created.header("location"), "/images/img-4");
        let json = created.json();
        assert_eq!(json["id"], "img-4");
        assert_eq!(json["url"], "/images/img-4");
        assert_eq!(
            (json["width"].as_u64(), json["height"].as_u64()),
            (Some(30), Some(20))
        );
        assert_eq!(json["content_type"], "image/png");

        let served = get(&app, "/images/img-4").await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(served.header("content-type"), "image/png");
        assert!(served.header("etag").starts_with('"'));
        assert_eq!(served.body.as_ref(), data.as_slice());
    }

    #[tokio::test]
    async fn raw_jpeg_upload_is_accepted() {
        let app = router();
        let data = encoded_image(16, 16, ImageFormat::Jpeg);
        let req = Request::post("/images")
            .header("content-type", "image/jpeg")
            .body(Body::from(data))
            .unwrap();
        let created = call(&app, req).await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert_eq!(created.json()["content_type"], "image/jpeg");
        let served = get(&app, created.header("location")).await;
        assert_eq!(served.header("content-type"), "image/jpeg");
    }

    #[tokio::test]
    async fn bad_uploads_are_refused() {
        let app = router();
        let text = Request::post("/images")
            .header("content-type", "text/plain")
            .body(Body::from("hello"))
            .unwrap();
        assert_eq!(
            call(&app, text).await.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let garbage = Request::post("/images")
            .header("content-type", "image/png")
            .body(Body::from(png(8, 8)[..40].to_vec()))
            .unwrap();
        let refused = call(&app, garbage).await;
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(refused.json()["code"], "unsupported_media_type");
        let wrong_field = call(&app, multipart("file", &png(2, 2))).await;
        assert_eq!(wrong_field.status, StatusCode::BAD_REQUEST);
        assert_eq!(wrong_field.json()["code"], "missing_image");
    }

    #[tokio::test]
    async fn unknown_images_are_404_json() {
        let missing = get(&router(), "/images/img-999").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.json()["code"], "not_found");
    }
}
