//! Errors, and the single place where a failed request becomes the client's answer.
//!
//! [`Error`] is what stops the service from starting. `Problem` is what a handler returns
//! when a request fails: a status, a stable machine-readable `code` and a short message,
//! rendered as the monolith's API error JSON `{"error": …, "code": …}` (in that order).
//! Internal details (SQL errors…) are logged, never shown to the client.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::allocation::AllocationError;
use super::storage::DbError;
use super::store::{BatchError, OrderError};

/// Why the API service could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened, migrated or seeded.
    #[error("could not prepare the API database: {0}; check --database")]
    Database(#[from] DbError),
    /// The event bus named by the proxy's config could not be subscribed to.
    #[error("could not subscribe to the proxy's event bus: {0}; check --bus-config")]
    Events(#[from] strangler::events::sink::SinkError),
    /// The HTTP client that completes events from the monolith could not be built.
    #[error("could not build the HTTP client for the monolith at --legacy-url: {0}")]
    Monolith(#[source] reqwest::Error),
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

impl From<DbError> for Problem {
    fn from(err: DbError) -> Self {
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

/// The fallback for paths no route matches: JSON, as the monolith answers under `/api`.
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

/// A JSON request body whose rejections are answered in the API's error format:
/// 415 without a JSON content type, 400 for malformed JSON, 422 for wrong fields.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    Problem::unsupported_media_type("expected Content-Type: application/json")
                }
                JsonRejection::JsonSyntaxError(_) => {
                    Problem::bad_request("malformed_json", rejection.body_text())
                }
                JsonRejection::JsonDataError(_) => {
                    Problem::unprocessable("invalid_body", rejection.body_text())
                }
                other => Problem::new(other.status(), "bad_body", other.body_text()),
            }),
        }
    }
}

/// Check a caller-chosen identifier (SKU, batch reference, order id): 1–64 characters of
/// letters, digits, `-`, `_` and `.`.
pub(crate) fn check_identifier(field: &str, value: &str) -> Result<(), Problem> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Problem::unprocessable(
            "invalid_field",
            format!("{field} must be 1-64 letters, digits, '-', '_' or '.'"),
        ))
    }
}
