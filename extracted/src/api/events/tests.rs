//! Applying events without a bus: idempotency, duplicates and out-of-order delivery, rejected
//! data, and rebuilding the allocation projection from a replay.

use serde_json::{Value, json};
use strangler::events::Event;

use super::*;
use crate::api::storage::Database;
use crate::api::test_support::{PgSchema, app, get, stable};
use crate::api::{Api, router};

fn event(kind: &str, data: Value) -> Event {
    Event::new(kind, Some("test"), "corr", data)
}

fn placed(id: &str, sku: &str, quantity: i64, price_cents: i64) -> Event {
    event(
        ORDER_PLACED,
        json!({
            "order_id": id, "sku": sku, "quantity": quantity,
            "created_at": "2026-01-01T00:00:00Z", "status": "placed",
            "lines": [{"sku": sku, "name": format!("the {sku}"), "quantity": quantity, "price_cents": price_cents}],
        }),
    )
}

async fn open(database: Database) -> Api {
    Api::open(&stable(database)).await.unwrap()
}

async fn stock(api: &Api, sku: &str) -> i64 {
    get(&router(api.clone()), &format!("/api/products/{sku}"))
        .await
        .json()["stock"]
        .as_i64()
        .unwrap()
}

async fn order_ids(api: &Api) -> Vec<String> {
    let list = get(&router(api.clone()), "/api/orders").await.json();
    list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn batch_of(api: &Api, order: &str) -> Value {
    let reply = get(
        &router(api.clone()),
        &format!("/api/orders/{order}/allocations"),
    )
    .await;
    reply.json()["lines"][0]["batchref"].clone()
}

/// An order applied once; the same event again, or the same order under another event id
/// (e.g. placed by this service itself), changes nothing.
async fn orders_apply_once(database: Database) {
    let api = open(database).await;
    let before = stock(&api, "BLUE-LAMP").await;
    let first = placed("ord-000003", "BLUE-LAMP", 2, 2950);
    assert_eq!(apply(api.store(), &first).await.unwrap(), Applied::Changed);
    assert_eq!(
        apply(api.store(), &first).await.unwrap(),
        Applied::Duplicate
    );
    let again = placed("ord-000003", "BLUE-LAMP", 2, 2950);
    assert_eq!(
        apply(api.store(), &again).await.unwrap(),
        Applied::Unchanged
    );
    assert_eq!(stock(&api, "BLUE-LAMP").await, before - 2);
    let order = get(&router(api.clone()), "/api/orders/ord-000003")
        .await
        .json();
    assert_eq!(
        order,
        json!({"id": "ord-000003", "sku": "BLUE-LAMP", "quantity": 2, "status": "placed",
               "created_at": "2026-01-01T00:00:00Z",
               "lines": [{"sku": "BLUE-LAMP", "name": "the BLUE-LAMP", "quantity": 2, "price_cents": 2950}],
               "total_cents": 5900, "currency": "USD"})
    );
    // Counter ids continue after the monolith's: an order placed here is ord-000004.
    let reply = crate::api::test_support::call(
        &router(api.clone()),
        crate::api::test_support::json_request(
            "POST",
            "/api/orders",
            json!({"sku": "RED-CHAIR", "quantity": 1}),
        ),
    )
    .await;
    assert_eq!(reply.json()["id"], "ord-000004");
    let cancel = event(ORDER_CANCELLED, json!({"order_id": "ord-000003"}));
    assert_eq!(apply(api.store(), &cancel).await.unwrap(), Applied::Changed);
    assert_eq!(
        apply(api.store(), &cancel).await.unwrap(),
        Applied::Duplicate
    );
    assert_eq!(stock(&api, "BLUE-LAMP").await, before);
}

#[tokio::test]
async fn sqlite_orders_apply_once() {
    orders_apply_once(Database::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_orders_apply_once() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    orders_apply_once(schema.database()).await;
}

#[tokio::test]
async fn a_cancellation_before_its_order_keeps_the_order_away() {
    let api = open(Database::default()).await;
    let cancel = event(ORDER_CANCELLED, json!({"order_id": "ord-000009"}));
    assert_eq!(
        apply(api.store(), &cancel).await.unwrap(),
        Applied::Unchanged
    );
    let late = placed("ord-000009", "RED-CHAIR", 1, 4999);
    assert_eq!(apply(api.store(), &late).await.unwrap(), Applied::Unchanged);
    assert!(!order_ids(&api).await.contains(&"ord-000009".to_owned()));
}

#[tokio::test]
async fn an_older_rule_without_lines_is_completed_from_the_catalogue() {
    let api = open(Database::default()).await;
    let old = event(
        ORDER_PLACED,
        json!({"order_id": "ord-abc", "sku": "RED-CHAIR", "quantity": 3}),
    );
    assert_eq!(apply(api.store(), &old).await.unwrap(), Applied::Changed);
    let order = get(&router(api.clone()), "/api/orders/ord-abc")
        .await
        .json();
    assert_eq!(order["lines"][0]["name"], "Red Chair");
    assert_eq!(order["total_cents"], 3 * 4999);
    assert!(order["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn unusable_data_is_rejected_once_and_other_types_ignored() {
    let api = open(Database::default()).await;
    for bad in [
        event(ORDER_PLACED, json!({"sku": "RED-CHAIR"})),
        event(
            ORDER_PLACED,
            json!({"order_id": "o", "sku": "NOPE", "quantity": 1}),
        ),
        event(
            BATCH_ADDED,
            json!({"reference": "b", "sku": "X", "quantity": 1, "eta": "soon", "created_at": "t"}),
        ),
        event(
            BATCH_QUANTITY_CHANGED,
            json!({"reference": "nope", "quantity": 1}),
        ),
        event(
            PRODUCT_UPDATED,
            json!({"sku": "NOPE", "name": "n", "description": "d", "price_cents": 1, "stock": 1, "updated_at": "t"}),
        ),
    ] {
        assert!(
            matches!(
                apply(api.store(), &bad).await.unwrap(),
                Applied::Rejected(_)
            ),
            "{bad:?}"
        );
        assert_eq!(apply(api.store(), &bad).await.unwrap(), Applied::Duplicate);
    }
    let other = event("shop.image.uploaded", json!({"image_id": "img-9"}));
    assert_eq!(apply(api.store(), &other).await.unwrap(), Applied::Ignored);
    assert_eq!(order_ids(&api).await, ["ord-000001", "ord-000002"]);
}

/// A day of the shop's traffic as events: orders for the lamp, a new warehouse batch, an
/// explicit allocation, a shrunk shipment, a cancellation and a product change.
fn history() -> Vec<Event> {
    vec![
        placed("ord-000003", "BLUE-LAMP", 8, 2950),
        placed("ord-000004", "BLUE-LAMP", 5, 2950),
        placed("ord-000005", "BLUE-LAMP", 30, 2950),
        event(
            LINE_ALLOCATED,
            json!({"batchref": "batch-004", "orderid": "ord-000004", "sku": "BLUE-LAMP", "qty": 5, "allocated_at": "2026-01-01T00:00:00Z"}),
        ),
        event(
            BATCH_ADDED,
            json!({"reference": "batch-010", "sku": "BLUE-LAMP", "quantity": 6, "eta": null, "created_at": "2026-01-01T00:00:00Z"}),
        ),
        event(
            BATCH_QUANTITY_CHANGED,
            json!({"reference": "batch-004", "quantity": 29, "deallocated": []}),
        ),
        placed("ord-000006", "RED-CHAIR", 1, 4999),
        event(ORDER_CANCELLED, json!({"order_id": "ord-000006"})),
        event(
            PRODUCT_UPDATED,
            json!({"sku": "BLUE-LAMP", "name": "Blue Lamp", "description": "Desk lamp.", "price_cents": 3100, "stock": 2, "updated_at": "2026-01-01T00:00:00Z"}),
        ),
    ]
}

async fn projection(api: &Api) -> Vec<(String, i64, Option<String>)> {
    let mut tx = api.store().begin().await.unwrap();
    let rows = crate::api::store::projection::all_in(&mut tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

#[tokio::test]
async fn the_projection_follows_the_allocation_rules() {
    let api = open(Database::default()).await;
    for e in history() {
        apply(api.store(), &e).await.unwrap();
    }
    // Warehouse stock first (batch-010 holds 6: not the 8), then the earliest shipment.
    assert_eq!(batch_of(&api, "ord-000003").await, "batch-003");
    // Explicitly allocated by the monolith: that batch stands.
    assert_eq!(batch_of(&api, "ord-000004").await, "batch-004");
    // 30 fits nowhere whole once batch-004 shrank to 29 with 5 taken.
    assert_eq!(batch_of(&api, "ord-000005").await, Value::Null);
    assert_eq!(
        get(&app().await, "/api/orders/nope/allocations")
            .await
            .status,
        axum::http::StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_replay_rebuilds_the_same_projection_whatever_the_order_and_duplicates() {
    let events = history();
    let first = open(Database::default()).await;
    for e in &events {
        apply(first.store(), e).await.unwrap();
    }
    // A rebuild from a replay: same events, delivered twice each.
    let rebuilt = open(Database::default()).await;
    for e in events.iter().chain(&events) {
        apply(rebuilt.store(), e).await.unwrap();
    }
    assert_eq!(projection(&first).await, projection(&rebuilt).await);
    assert_eq!(order_ids(&first).await, order_ids(&rebuilt).await);
    assert_eq!(
        stock(&first, "BLUE-LAMP").await,
        stock(&rebuilt, "BLUE-LAMP").await
    );
    // Out of order: batches and allocations first, orders last — the projection converges.
    let reordered = open(Database::default()).await;
    let (orders, rest): (Vec<&Event>, Vec<&Event>) =
        events.iter().partition(|e| e.kind == ORDER_PLACED);
    for e in rest.into_iter().chain(orders) {
        apply(reordered.store(), e).await.unwrap();
    }
    assert_eq!(projection(&first).await, projection(&reordered).await);
}
