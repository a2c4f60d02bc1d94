//! CORS for the API: preflight (`OPTIONS`) answers with `Allow` and the
//! `Access-Control-Allow-*` headers, and `Access-Control-Allow-Origin` on actual answers.
//! The shop trusts every origin: it is a demo, and nothing here uses credentials. The
//! monolith's behaviour exactly, header for header.

use axum::extract::{MatchedPath, Request};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ALLOW, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::Problem;

/// The methods each API route takes (HEAD comes with GET).
const METHODS: &[(&str, &str)] = &[
    ("/api/products", "GET, HEAD, OPTIONS"),
    ("/api/products/{sku}", "GET, HEAD, PUT, OPTIONS"),
    ("/api/orders", "GET, HEAD, POST, OPTIONS"),
    ("/api/orders/{id}", "GET, HEAD, DELETE, OPTIONS"),
    ("/api/orders/{id}/allocations", "GET, HEAD, OPTIONS"),
    ("/api/batches", "GET, HEAD, POST, OPTIONS"),
    ("/api/batches/{reference}", "GET, HEAD, PATCH, OPTIONS"),
    ("/api/allocate", "POST, OPTIONS"),
    ("/api/imports", "POST, OPTIONS"),
];

/// Headers a browser may send when the preflight does not list any.
const DEFAULT_ALLOWED_HEADERS: &str = "content-type, x-request-id";

/// `OPTIONS` on any API route → 204 with `Allow` and CORS preflight headers.
pub(crate) async fn preflight(matched: MatchedPath, headers: HeaderMap) -> Response {
    let Some((_, methods)) = METHODS.iter().find(|(path, _)| *path == matched.as_str()) else {
        return Problem::not_found(format!("no API route {}", matched.as_str())).into_response();
    };
    let methods = HeaderValue::from_static(methods);
    let allow_headers = headers
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_ALLOWED_HEADERS));
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(ALLOW, methods.clone());
    out.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
    out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed_origin(&headers));
    out.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    out.insert(
        VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    response
}

/// Add `Access-Control-Allow-Origin` to answers for cross-origin callers.
pub(crate) async fn allow_origin(request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        if !response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
            response
                .headers_mut()
                .insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

fn allowed_origin(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"))
}
