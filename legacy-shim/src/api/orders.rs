//! `/api/orders`: place, list, show and delete orders.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::Shop;
use crate::error::Problem;
use crate::store::Order;

/// The body of `POST /api/orders`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewOrder {
    sku: String,
    quantity: i64,
}

/// `POST /api/orders` → 201, `Location: /api/orders/{id}` and the order.
/// 422 for an unknown SKU or bad quantity, 409 when stock is short.
pub(crate) async fn create(
    State(shop): State<Shop>,
    JsonBody(new): JsonBody<NewOrder>,
) -> Result<Response, Problem> {
    let order = shop
        .store()
        .create_order(None, &[(new.sku, new.quantity)])?;
    let location = format!("/api/orders/{}", order.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(order)).into_response())
}

/// `GET /api/orders` → `{"orders": [...], "count": n, "as_of": …}`, oldest first.
pub(crate) async fn list(State(shop): State<Shop>) -> Result<Json<OrderList>, Problem> {
    let orders = shop.store().orders()?;
    Ok(Json(OrderList {
        count: orders.len(),
        orders,
        as_of: shop.clock().timestamp(),
    }))
}

/// The order list answer.
#[derive(Debug, Serialize)]
pub(crate) struct OrderList {
    orders: Vec<Order>,
    count: usize,
    as_of: String,
}

/// `GET /api/orders/{id}` → the order, or 404.
pub(crate) async fn show(
    State(shop): State<Shop>,
    Path(id): Path<String>,
) -> Result<Json<Order>, Problem> {
    shop.store()
        .order(&id)?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no order {id}")))
}

/// `DELETE /api/orders/{id}` → 204 (stock is returned), or 404.
pub(crate) async fn delete(
    State(shop): State<Shop>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    if shop.store().delete_order(&id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("no order {id}")))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::json;

    use crate::test_support::{call, get, json_request, router};

    #[tokio::test]
    async fn order_lifecycle() {
        let app = router();
        let created = call(
            &app,
            json_request(
                "POST",
                "/api/orders",
                json!({"sku": "GLASS-VASE", "quantity": 3}),
            ),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED);
        assert_eq!(created.header("location"), "/api/orders/ord-000003");
        let order = created.json();
        assert_eq!(order["id"], "ord-000003");
        assert_eq!(order["sku"], "GLASS-VASE");
        assert_eq!(order["quantity"], 3);
        assert_eq!(order["status"], "placed");
        assert_eq!(order["created_at"], "2026-01-01T00:00:00Z");
        assert_eq!(
            get(&app, "/api/products/GLASS-VASE").await.json()["stock"],
            22
        );

        assert_eq!(get(&app, "/api/orders/ord-000003").await.json(), order);
        assert_eq!(get(&app, "/api/orders").await.json()["count"], 3);

        let deleted = call(
            &app,
            Request::delete("/api/orders/ord-000003")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        assert!(deleted.body.is_empty());
        assert_eq!(
            get(&app, "/api/orders/ord-000003").await.status,
            StatusCode::NOT_FOUND
        );
        let again = call(
            &app,
            Request::delete("/api/orders/ord-000003")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        assert_eq!(
            get(&app, "/api/products/GLASS-VASE").await.json()["stock"],
            25
        );
    }

    #[tokio::test]
    async fn refused_orders() {
        let app = router();
        let cases = [
            (
                json!({"sku": "NOPE", "quantity": 1}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_sku",
            ),
            (
                json!({"sku": "BLUE-LAMP", "quantity": 0}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_quantity",
            ),
            (
                json!({"sku": "COTTON-THROW", "quantity": 1}),
                StatusCode::CONFLICT,
                "insufficient_stock",
            ),
            (
                json!({"sku": "BLUE-LAMP"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
        ];
        for (body, status, code) in cases {
            let reply = call(&app, json_request("POST", "/api/orders", body)).await;
            assert_eq!(
                (reply.status, reply.json()["code"].as_str()),
                (status, Some(code))
            );
        }
    }
}
