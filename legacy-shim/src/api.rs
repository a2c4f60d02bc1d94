//! The JSON API under `/api`: products, orders, batches and allocation, streamed imports,
//! and CORS (preflight answers and `Access-Control-Allow-Origin`).
//!
//! Every failure is `{"error": …, "code": …}` with a fitting status: 400 malformed input,
//! 404 unknown entity, 409 conflicts with current state, 415 wrong content type, 422 valid
//! JSON with unacceptable values.

mod batches;
mod carts;
mod cors;
mod imports;
mod orders;
mod products;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::routing::{get, post};
use axum::{Json, middleware};

use crate::Shop;
use crate::error::Problem;

/// The `/api` routes; every one also answers `OPTIONS` (CORS preflight).
pub(crate) fn routes() -> Router<Shop> {
    let preflight = cors::preflight;
    Router::new()
        .route("/api/products", get(products::list).options(preflight))
        .route(
            "/api/products/{sku}",
            get(products::show).put(products::update).options(preflight),
        )
        .route(
            "/api/orders",
            get(orders::list).post(orders::create).options(preflight),
        )
        .route(
            "/api/orders/{id}",
            get(orders::show).delete(orders::delete).options(preflight),
        )
        .route(
            "/api/batches",
            get(batches::list).post(batches::create).options(preflight),
        )
        .route(
            "/api/batches/{reference}",
            get(batches::show)
                .patch(batches::change_quantity)
                .options(preflight),
        )
        .route("/api/allocate", post(batches::allocate).options(preflight))
        .route("/api/imports", post(imports::import).options(preflight))
        .merge(carts::routes())
        .layer(middleware::from_fn(cors::allow_origin))
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
