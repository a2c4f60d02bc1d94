//! `/api/carts`: the shopping carts the pages keep by `session` cookie, as JSON, so a front
//! that renders the pages elsewhere (the extracted UI front) can keep carts here, with the
//! same session ids, lines and checkout as the pages.
//!
//! - `POST /api/carts` → 201, a new empty cart and its session id (the cookie value);
//! - `GET /api/carts/{session}` → the cart (empty for a session never used);
//! - `POST /api/carts/{session}` with `{"sku", "quantity"}` → the cart after adding;
//! - `POST /api/carts/{session}/checkout` → 201, the order the cart became (409 when empty).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::Shop;
use crate::error::Problem;
use crate::store::Product;

/// The cart routes (CORS comes from the API router they are merged into).
pub(crate) fn routes() -> Router<Shop> {
    let preflight = super::cors::preflight;
    Router::new()
        .route("/api/carts", post(create).options(preflight))
        .route(
            "/api/carts/{session}",
            get(show).post(add).options(preflight),
        )
        .route(
            "/api/carts/{session}/checkout",
            post(checkout).options(preflight),
        )
}

/// A cart as JSON: its lines with the products as they are now, and the total.
#[derive(Debug, Serialize)]
pub(crate) struct Cart {
    session: String,
    lines: Vec<Line>,
    count: usize,
    total_cents: i64,
    currency: &'static str,
}

/// One cart line.
#[derive(Debug, Serialize)]
struct Line {
    product: Product,
    quantity: i64,
}

/// The body of `POST /api/carts/{session}`.
#[derive(Debug, Deserialize)]
pub(crate) struct AddLine {
    sku: String,
    quantity: i64,
}

/// `POST /api/carts` → 201 with `Location` and the new, empty cart.
async fn create(State(shop): State<Shop>) -> Result<Response, Problem> {
    let session = shop.store().new_session()?;
    let cart = cart(&shop, &session)?;
    let location = format!("/api/carts/{session}");
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(cart)).into_response())
}

/// `GET /api/carts/{session}` → the cart.
async fn show(
    State(shop): State<Shop>,
    Path(session): Path<String>,
) -> Result<Json<Cart>, Problem> {
    check_session(&session)?;
    Ok(Json(cart(&shop, &session)?))
}

/// `POST /api/carts/{session}` → the cart after adding the line; 422 unknown SKU or quantity.
async fn add(
    State(shop): State<Shop>,
    Path(session): Path<String>,
    JsonBody(line): JsonBody<AddLine>,
) -> Result<Json<Cart>, Problem> {
    check_session(&session)?;
    shop.store()
        .add_to_cart(&session, &line.sku, line.quantity)?;
    Ok(Json(cart(&shop, &session)?))
}

/// `POST /api/carts/{session}/checkout` → 201 with `Location` and the order; 409 when empty.
async fn checkout(
    State(shop): State<Shop>,
    Path(session): Path<String>,
) -> Result<Response, Problem> {
    check_session(&session)?;
    let order = shop.store().checkout(&session)?;
    let location = format!("/api/orders/{}", order.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(order)).into_response())
}

/// The cart of `session`, as JSON.
fn cart(shop: &Shop, session: &str) -> Result<Cart, Problem> {
    let lines: Vec<Line> = shop
        .store()
        .cart(session)?
        .into_iter()
        .map(|line| Line {
            product: line.product,
            quantity: line.quantity,
        })
        .collect();
    Ok(Cart {
        session: session.to_owned(),
        count: lines.len(),
        total_cents: lines
            .iter()
            .map(|l| l.product.price_cents * l.quantity)
            .sum(),
        currency: "USD",
        lines,
    })
}

/// A session id as the cookie carries it: 1–64 letters, digits, `-` or `_`.
fn check_session(session: &str) -> Result<(), Problem> {
    let ok = (1..=64).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Problem::unprocessable(
            "invalid_field",
            "session must be 1-64 letters, digits, '-' or '_'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::test_support::{call, get, json_request, router};

    #[tokio::test]
    async fn a_cart_fills_and_checks_out_like_the_pages() {
        let app = router();
        let created = call(&app, json_request("POST", "/api/carts", json!({}))).await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert_eq!(created.header("location"), "/api/carts/sess-000001");
        assert_eq!(
            created.json(),
            json!({"session": "sess-000001", "lines": [], "count": 0, "total_cents": 0, "currency": "USD"})
        );
        let add = |body| json_request("POST", "/api/carts/sess-000001", body);
        let one = call(&app, add(json!({"sku": "BLUE-LAMP", "quantity": 2}))).await;
        assert_eq!(one.status, StatusCode::OK);
        let cart = call(&app, add(json!({"sku": "RED-CHAIR", "quantity": 1})))
            .await
            .json();
        assert_eq!(cart["count"], 2);
        assert_eq!(cart["total_cents"], 2 * 2950 + 4999);
        assert_eq!(cart["lines"][0]["product"]["sku"], "BLUE-LAMP");
        assert_eq!(cart["lines"][0]["quantity"], 2);
        assert_eq!(get(&app, "/api/carts/sess-000001").await.json(), cart);

        let unknown = call(&app, add(json!({"sku": "NOPE", "quantity": 1}))).await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(unknown.json()["code"], "unknown_sku");

        let checkout = json_request("POST", "/api/carts/sess-000001/checkout", json!({}));
        let order = call(&app, checkout).await;
        assert_eq!(order.status, StatusCode::CREATED);
        assert_eq!(order.header("location"), "/api/orders/ord-000003");
        assert_eq!(order.json()["lines"].as_array().map(Vec::len), Some(2));
        let again = json_request("POST", "/api/carts/sess-000001/checkout", json!({}));
        let empty = call(&app, again).await;
        assert_eq!(empty.status, StatusCode::CONFLICT);
        assert_eq!(empty.json()["code"], "empty_cart");
        assert_eq!(
            get(&app, "/api/carts/not%20valid").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
