//! `Problem`: the single place where a failed request becomes the client's answer.
//!
//! A status, a stable machine-readable `code` and a short message, rendered as the
//! monolith's misc error JSON: `{"error": …, "code": …}`, in that order. Internal details are
//! logged, never shown.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A request that cannot be answered as asked: what the client sees.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of a `Problem`, fields in the monolith's wire order.
#[derive(Serialize)]
struct ProblemBody<'a> {
    error: &'a str,
    code: &'a str,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            error: &self.message,
            code: self.code,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The fallback for paths no route matches. The monolith answers an HTML page outside its
/// JSON areas; this service only owns `/misc`, so it always answers JSON.
pub(crate) async fn not_found(uri: Uri) -> Response {
    Problem::not_found(format!("no page at {}", uri.path())).into_response()
}

/// The fallback for a known path asked with a method it does not take (axum adds `Allow`).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn renders_code_then_error() {
        let response = Problem::bad_request("bad_rows", "rows must be \"whole\"").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            body.as_ref(),
            br#"{"error":"rows must be \"whole\"","code":"bad_rows"}"#
        );
    }
}
