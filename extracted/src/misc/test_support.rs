//! Shared test fixtures: a stable service, a one-call request helper, and image makers.

use std::io::Cursor;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use image::{ImageFormat, Rgb, RgbImage};
use tower::ServiceExt;

use super::{Options, app};

/// The service with a stopped clock and counter ids, so answers are predictable.
pub(crate) fn router() -> Router {
    router_with(Options {
        vary: false,
        defect: false,
        pictures: None,
    })
}

/// The service with these options.
pub(crate) fn router_with(options: Options) -> Router {
    app(options)
}

/// A whole response, read.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// A header as text; empty when absent.
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }
}

/// Send one request through the app and read the whole answer.
pub(crate) async fn call(app: &Router, req: Request<Body>) -> Reply {
    let response = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub(crate) async fn get(app: &Router, uri: &str) -> Reply {
    call(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// An image of `w`×`h` pixels encoded as `format`.
pub(crate) fn encoded_image(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
    let picture = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}
