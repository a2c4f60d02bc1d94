//! `/api/orders`: place, list, show and delete orders, and (new in this service) the
//! allocation projection of one order.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Api;
use super::error::{JsonBody, Problem};
use super::store::projection::{self, LineAllocation};
use super::store::{Order, orders};

/// The body of `POST /api/orders`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewOrder {
    sku: String,
    quantity: i64,
}

/// `POST /api/orders` → 201, `Location: /api/orders/{id}` and the order.
/// 422 for an unknown SKU or bad quantity, 409 when stock is short.
pub(crate) async fn create(
    State(api): State<Api>,
    JsonBody(new): JsonBody<NewOrder>,
) -> Result<Response, Problem> {
    let mut tx = api.store().begin().await?;
    let order = orders::place_in(&mut tx, api.clock(), &[(new.sku, new.quantity)]).await?;
    let skus: Vec<String> = order.lines.iter().map(|l| l.sku.clone()).collect();
    projection::recompute_skus_in(&mut tx, &skus).await?;
    tx.commit().await?;
    let location = format!("/api/orders/{}", order.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(order)).into_response())
}

/// The order list answer.
#[derive(Debug, Serialize)]
pub(crate) struct OrderList {
    orders: Vec<Order>,
    count: usize,
    as_of: String,
}

/// `GET /api/orders` → `{"orders": [...], "count": n, "as_of": …}`, oldest first.
pub(crate) async fn list(State(api): State<Api>) -> Result<Json<OrderList>, Problem> {
    let mut tx = api.store().begin().await?;
    let orders = orders::all_in(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(OrderList {
        count: orders.len(),
        orders,
        as_of: api.clock().timestamp(),
    }))
}

/// `GET /api/orders/{id}` → the order, or 404.
pub(crate) async fn show(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<Order>, Problem> {
    let mut tx = api.store().begin().await?;
    let order = orders::one_in(&mut tx, &id).await?;
    tx.commit().await?;
    order
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no order {id}")))
}

/// `DELETE /api/orders/{id}` → 204 (stock is returned), or 404.
pub(crate) async fn delete(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let mut tx = api.store().begin().await?;
    let Some(skus) = orders::delete_in(&mut tx, &id).await? else {
        return Err(Problem::not_found(format!("no order {id}")));
    };
    projection::recompute_skus_in(&mut tx, &skus).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The allocation projection of one order.
#[derive(Debug, Serialize)]
pub(crate) struct OrderAllocations {
    order_id: String,
    lines: Vec<LineAllocation>,
}

/// `GET /api/orders/{id}/allocations` → which batch each line of the order is allocated to
/// (`batchref: null` when none has room), or 404. Not in the monolith: the projection this
/// service keeps from the monolith's `shop.order.placed` events.
pub(crate) async fn allocations(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<OrderAllocations>, Problem> {
    let mut tx = api.store().begin().await?;
    let exists = orders::one_in(&mut tx, &id).await?.is_some();
    let lines = projection::of_order_in(&mut tx, &id).await?;
    tx.commit().await?;
    if !exists {
        return Err(Problem::not_found(format!("no order {id}")));
    }
    Ok(Json(OrderAllocations {
        order_id: id,
        lines,
    }))
}
