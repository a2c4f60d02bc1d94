//! `/api/products`: the catalog as JSON, and price/name/stock updates.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::Shop;
use crate::error::Problem;
use crate::store::{Product, ProductUpdate};

/// `GET /api/products` → `{"products": [...], "count": n, "as_of": …}`.
pub(crate) async fn list(State(shop): State<Shop>) -> Result<Json<ProductList>, Problem> {
    let products = shop.store().products()?;
    Ok(Json(ProductList {
        count: products.len(),
        products,
        as_of: shop.clock().timestamp(),
    }))
}

/// The catalog answer.
#[derive(Debug, Serialize)]
pub(crate) struct ProductList {
    products: Vec<Product>,
    count: usize,
    as_of: String,
}

/// `GET /api/products/{sku}` → the product, or 404.
pub(crate) async fn show(
    State(shop): State<Shop>,
    Path(sku): Path<String>,
) -> Result<Json<Product>, Problem> {
    shop.store()
        .product(&sku)?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no product {sku}")))
}

/// The body of `PUT /api/products/{sku}`: any of these, at least one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProductChange {
    name: Option<String>,
    description: Option<String>,
    price_cents: Option<i64>,
    stock: Option<i64>,
}

/// `PUT /api/products/{sku}` → the updated product; 404 unknown, 422 bad values.
pub(crate) async fn update(
    State(shop): State<Shop>,
    Path(sku): Path<String>,
    JsonBody(change): JsonBody<ProductChange>,
) -> Result<Json<Product>, Problem> {
    let update = validate(change)?;
    shop.store()
        .update_product(&sku, &update)?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no product {sku}")))
}

fn validate(change: ProductChange) -> Result<ProductUpdate, Problem> {
    let invalid = |message: &str| Problem::unprocessable("invalid_field", message);
    if change.name.is_none()
        && change.description.is_none()
        && change.price_cents.is_none()
        && change.stock.is_none()
    {
        return Err(invalid(
            "give at least one of name, description, price_cents, stock",
        ));
    }
    if let Some(name) = &change.name {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(invalid("name must be 1-200 characters"));
        }
    }
    if change.description.as_ref().is_some_and(|d| d.len() > 2000) {
        return Err(invalid("description must be at most 2000 characters"));
    }
    if change
        .price_cents
        .is_some_and(|p| !(0..=100_000_000).contains(&p))
    {
        return Err(invalid("price_cents must be between 0 and 100000000"));
    }
    if change.stock.is_some_and(|s| !(0..=1_000_000).contains(&s)) {
        return Err(invalid("stock must be between 0 and 1000000"));
    }
    Ok(ProductUpdate {
        name: change.name.map(|n| n.trim().to_owned()),
        description: change.description,
        price_cents: change.price_cents,
        stock: change.stock,
    })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::json;

    use crate::test_support::{call, get, json_request, router};

    #[tokio::test]
    async fn lists_and_shows_products() {
        let app = router();
        let list = get(&app, "/api/products").await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(list.header("content-type"), "application/json");
        let json = list.json();
        assert_eq!(json["count"], 12);
        assert_eq!(json["as_of"], "2026-01-01T00:00:00Z");
        let chair = get(&app, "/api/products/RED-CHAIR").await.json();
        assert_eq!(chair["price_cents"], 4999);
        assert_eq!(chair["currency"], "USD");
        assert_eq!(chair["updated_at"], "2026-01-01T00:00:00Z");
        let missing = get(&app, "/api/products/NOPE").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(
            missing.json(),
            json!({"error": "no product NOPE", "code": "not_found"})
        );
    }

    #[tokio::test]
    async fn updates_products() {
        let app = router();
        let req = json_request(
            "PUT",
            "/api/products/BLUE-LAMP",
            json!({"price_cents": 3100, "stock": 7}),
        );
        let updated = call(&app, req).await;
        assert_eq!(updated.status, StatusCode::OK);
        assert_eq!(
            (
                updated.json()["price_cents"].as_i64(),
                updated.json()["stock"].as_i64()
            ),
            (Some(3100), Some(7))
        );
        assert_eq!(
            get(&app, "/api/products/BLUE-LAMP").await.json()["price_cents"],
            3100
        );
    }

    #[tokio::test]
    async fn refuses_bad_updates_with_the_right_status() {
        let app = router();
        let cases = [
            (
                json_request("PUT", "/api/products/NOPE", json!({"stock": 1})),
                StatusCode::NOT_FOUND,
            ),
            (
                json_request("PUT", "/api/products/BLUE-LAMP", json!({"price_cents": -1})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json_request("PUT", "/api/products/BLUE-LAMP", json!({})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json_request("PUT", "/api/products/BLUE-LAMP", json!({"colour": "red"})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json_request("PUT", "/api/products/BLUE-LAMP", json!({"stock": "many"})),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ];
        for (req, status) in cases {
            let reply = call(&app, req).await;
            assert_eq!(reply.status, status, "{}", reply.text());
            assert!(reply.json()["code"].is_string());
        }
        let malformed = Request::put("/api/products/BLUE-LAMP")
            .header("content-type", "application/json")
            .body(Body::from("{not json"))
            .unwrap();
        let reply = call(&app, malformed).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["code"], "malformed_json");
        let no_type = Request::put("/api/products/BLUE-LAMP")
            .body(Body::from("{}"))
            .unwrap();
        let reply = call(&app, no_type).await;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(reply.json()["code"], "unsupported_media_type");
    }

    #[tokio::test]
    async fn wrong_methods_are_405_json_with_allow() {
        let app = router();
        let reply = call(
            &app,
            Request::delete("/api/products")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.json()["code"], "method_not_allowed");
        assert!(reply.header("allow").contains("GET"));
    }
}
