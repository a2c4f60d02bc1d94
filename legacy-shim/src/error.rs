//! Errors, and the single place that turns a failed request into the client's answer.
//!
//! [`Error`] is what can stop the shop from starting or serving. `Problem` is what a handler
//! returns when a request fails: a status, a stable machine-readable `code` and a short
//! message. It renders as JSON (`{"error": …, "code": …}`) or, wrapped in `PageProblem`, as an
//! HTML page. Internal details (SQL errors…) are logged, never shown to the client.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::allocation::AllocationError;
use crate::pages::layout;
use crate::store::{BatchError, OrderError};

/// Why the shop could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file could not be opened (bad path, permissions, not a SQLite file).
    #[error("could not open the shop database {path}: {source}; check the --db path")]
    OpenDatabase {
        /// The file that was asked for.
        path: std::path::PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema or the seed data could not be written.
    #[error("could not prepare the shop database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A seed image could not be encoded as PNG.
    #[error("could not generate seed image {id}: {source}")]
    SeedImage {
        /// The image id being generated.
        id: String,
        /// What the encoder said.
        #[source]
        source: image::ImageError,
    },
    /// The listener failed while serving.
    #[error("serving HTTP failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A request that cannot be answered as asked: what the client sees.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    code: &'static str,
    message: String,
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

    pub(crate) fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
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

    /// Answer in the format the path's area uses: JSON or an HTML page.
    pub(crate) fn respond_for(self, path: &str) -> Response {
        if wants_json(path) {
            self.into_response()
        } else {
            PageProblem(self).into_response()
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.message,
            code: self.code,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The JSON error shape: `{"error": "…", "code": "…"}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
}

impl From<rusqlite::Error> for Problem {
    fn from(err: rusqlite::Error) -> Self {
        tracing::error!(error = %err, "database query failed");
        Problem::internal()
    }
}

impl From<OrderError> for Problem {
    fn from(err: OrderError) -> Self {
        let message = err.to_string();
        match err {
            OrderError::UnknownSku(_) => Problem::unprocessable("unknown_sku", message),
            OrderError::InvalidQuantity(_) => Problem::unprocessable("invalid_quantity", message),
            OrderError::InsufficientStock { .. } => {
                Problem::conflict("insufficient_stock", message)
            }
            OrderError::EmptyCart => Problem::conflict("empty_cart", message),
            OrderError::Database(err) => err.into(),
        }
    }
}

impl From<BatchError> for Problem {
    fn from(err: BatchError) -> Self {
        let message = err.to_string();
        match err {
            BatchError::NotFound(_) => Problem::not_found(message),
            BatchError::Exists(_) => Problem::conflict("batch_exists", message),
            BatchError::Allocation(AllocationError::InvalidSku(_)) => {
                Problem::bad_request("invalid_sku", message)
            }
            BatchError::Allocation(AllocationError::OutOfStock { .. }) => {
                Problem::conflict("out_of_stock", "out of stock")
            }
            BatchError::Database(err) => err.into(),
        }
    }
}

/// A `Problem` rendered as an HTML page, for the server-rendered part of the shop.
#[derive(Debug)]
pub(crate) struct PageProblem(pub(crate) Problem);

impl IntoResponse for PageProblem {
    fn into_response(self) -> Response {
        let Problem {
            status, message, ..
        } = self.0;
        (status, Html(layout::error_page(status, &message))).into_response()
    }
}

impl From<Problem> for PageProblem {
    fn from(problem: Problem) -> Self {
        PageProblem(problem)
    }
}

impl From<rusqlite::Error> for PageProblem {
    fn from(err: rusqlite::Error) -> Self {
        PageProblem(err.into())
    }
}

impl From<OrderError> for PageProblem {
    fn from(err: OrderError) -> Self {
        PageProblem(err.into())
    }
}

/// Whether errors on this path are JSON (API, misc, images) rather than HTML pages.
pub(crate) fn wants_json(path: &str) -> bool {
    ["/api", "/misc", "/images"]
        .iter()
        .any(|area| path == *area || path.starts_with(&format!("{area}/")))
}

/// The fallback for paths no route matches.
pub(crate) async fn not_found(uri: Uri) -> Response {
    Problem::not_found(format!("no page at {}", uri.path())).respond_for(uri.path())
}

/// The fallback for a known path asked with a method it does not take (axum adds `Allow`).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
    .respond_for(uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_choose_json_or_html() {
        assert!(wants_json("/api/products"));
        assert!(wants_json("/misc"));
        assert!(wants_json("/images/img-1"));
        assert!(!wants_json("/"));
        assert!(!wants_json("/apiary"));
        assert!(!wants_json("/products/RED-CHAIR"));
    }
}
