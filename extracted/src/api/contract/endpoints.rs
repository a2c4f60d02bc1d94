//! Every endpoint of the JSON API, its errors, and the middleware (request ids, gzip,
//! ETag/304, HEAD, CORS, fallbacks) — on SQLite and on PostgreSQL.

use axum::http::Method;
use serde_json::json;

use super::{Case, assert_equal_answers};
use crate::api::storage::Database;
use crate::api::test_support::PgSchema;

fn put(uri: &str, body: serde_json::Value) -> Case {
    Case::json(Method::PUT, uri, body)
}

fn post(uri: &str, body: serde_json::Value) -> Case {
    Case::json(Method::POST, uri, body)
}

fn patch(uri: &str, body: serde_json::Value) -> Case {
    Case::json(Method::PATCH, uri, body)
}

fn products() -> Vec<Case> {
    vec![
        Case::get("/api/products"),
        Case::new(Method::HEAD, "/api/products"),
        Case::get("/api/products").header("accept-encoding", "gzip"),
        Case::get("/api/products").header("if-none-match", "*"),
        Case::get("/api/products")
            .header("if-none-match", "*")
            .header("accept-encoding", "gzip"),
        Case::get("/api/products/RED-CHAIR"),
        Case::get("/api/products/RED-CHAIR").header("origin", "http://shop.example"),
        Case::get("/api/products/NOPE"),
        put(
            "/api/products/BLUE-LAMP",
            json!({"price_cents": 3100, "stock": 7}),
        ),
        put(
            "/api/products/BLUE-LAMP",
            json!({"name": "  Bright Lamp  "}),
        ),
        Case::get("/api/products/BLUE-LAMP"),
        put("/api/products/NOPE", json!({"stock": 1})),
        put("/api/products/BLUE-LAMP", json!({"price_cents": -1})),
        put("/api/products/BLUE-LAMP", json!({})),
        put("/api/products/BLUE-LAMP", json!({"colour": "red"})),
        put("/api/products/BLUE-LAMP", json!({"stock": "many"})),
        put("/api/products/BLUE-LAMP", json!({"name": " "})),
        put(
            "/api/products/BLUE-LAMP",
            json!({"description": "d".repeat(2001)}),
        ),
        put("/api/products/BLUE-LAMP", json!({"stock": 1_000_001})),
        Case::new(Method::PUT, "/api/products/BLUE-LAMP")
            .header("content-type", "application/json")
            .body(b"{not json".to_vec()),
        Case::new(Method::PUT, "/api/products/BLUE-LAMP").body(b"{}".to_vec()),
        Case::new(Method::DELETE, "/api/products"),
        Case::new(Method::POST, "/api/products/RED-CHAIR"),
        Case::get("/api/products"),
    ]
}

fn orders() -> Vec<Case> {
    vec![
        Case::get("/api/orders"),
        post("/api/orders", json!({"sku": "GLASS-VASE", "quantity": 3})),
        post("/api/orders", json!({"sku": "NOPE", "quantity": 1})),
        post("/api/orders", json!({"sku": "BLUE-LAMP", "quantity": 0})),
        post("/api/orders", json!({"sku": "BLUE-LAMP", "quantity": 1001})),
        post("/api/orders", json!({"sku": "COTTON-THROW", "quantity": 1})),
        post("/api/orders", json!({"sku": "BLUE-LAMP"})),
        post("/api/orders", json!({"sku": "RED-CHAIR", "quantity": 2})),
        Case::get("/api/orders/ord-000003"),
        Case::get("/api/orders/ord-000004").header("accept-encoding", "gzip"),
        Case::get("/api/orders/ord-999999"),
        Case::get("/api/orders"),
        Case::get("/api/orders").header("accept-encoding", "gzip"),
        Case::get("/api/products/GLASS-VASE"),
        Case::new(Method::DELETE, "/api/orders/ord-000003"),
        Case::new(Method::DELETE, "/api/orders/ord-000003"),
        Case::get("/api/orders/ord-000003"),
        Case::get("/api/products/GLASS-VASE"),
        Case::new(Method::PUT, "/api/orders"),
        post("/api/orders", json!({"sku": "GLASS-VASE", "quantity": 1})),
        Case::get("/api/orders"),
    ]
}

fn batches() -> Vec<Case> {
    vec![
        Case::get("/api/batches"),
        Case::get("/api/batches/batch-002"),
        Case::get("/api/batches/nope"),
        post(
            "/api/batches",
            json!({"reference": "t-ship", "sku": "T-SOFA", "quantity": 10, "eta": "2026-02-01"}),
        ),
        post(
            "/api/batches",
            json!({"reference": "t-stock", "sku": "T-SOFA", "quantity": 10}),
        ),
        post(
            "/api/batches",
            json!({"reference": "t-late", "sku": "T-SOFA", "quantity": 10, "eta": null}),
        ),
        post(
            "/api/batches",
            json!({"reference": "batch-001", "sku": "X", "quantity": 1}),
        ),
        post(
            "/api/batches",
            json!({"reference": "t-x", "sku": "X", "quantity": 1, "eta": "soon"}),
        ),
        post(
            "/api/batches",
            json!({"reference": "bad ref", "sku": "X", "quantity": 1}),
        ),
        post(
            "/api/batches",
            json!({"reference": "t-y", "sku": "X", "quantity": 0}),
        ),
        post(
            "/api/batches",
            json!({"reference": "t-y", "sku": "", "quantity": 1}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o1", "sku": "T-SOFA", "qty": 4}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o1", "sku": "T-SOFA", "qty": 4}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o2", "sku": "T-SOFA", "qty": 3}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o3", "sku": "T-SOFA", "qty": 3}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o4", "sku": "T-SOFA", "qty": 9}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o5", "sku": "T-SOFA", "qty": 50}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o6", "sku": "NO-SUCH", "qty": 1}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o 7", "sku": "T-SOFA", "qty": 1}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o8", "sku": "T-SOFA", "qty": 0}),
        ),
        post("/api/allocate", json!({"orderid": "o9", "sku": "T-SOFA"})),
        patch("/api/batches/t-stock", json!({"quantity": 5})),
        patch("/api/batches/t-stock", json!({"quantity": 100})),
        patch("/api/batches/nope", json!({"quantity": 1})),
        patch("/api/batches/batch-001", json!({"quantity": -1})),
        Case::get("/api/batches/t-stock"),
        Case::get("/api/batches"),
        Case::get("/api/batches").header("accept-encoding", "gzip"),
        Case::new(Method::DELETE, "/api/batches/t-stock"),
        Case::get("/api/allocate"),
    ]
}

fn imports_cors_and_fallbacks() -> Vec<Case> {
    vec![
        Case::new(Method::POST, "/api/imports")
            .header("content-type", "application/octet-stream")
            .body(vec![7u8; 100_000]),
        Case::new(Method::POST, "/api/imports"),
        Case::get("/api/imports"),
        Case::new(Method::OPTIONS, "/api/products/RED-CHAIR")
            .header("origin", "http://shop.example")
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type"),
        Case::new(Method::OPTIONS, "/api/orders"),
        Case::new(Method::OPTIONS, "/api/orders/ord-000001"),
        Case::new(Method::OPTIONS, "/api/batches/batch-001"),
        Case::new(Method::OPTIONS, "/api/allocate").header("origin", "http://a.example"),
        Case::new(Method::OPTIONS, "/api/imports"),
        Case::new(Method::OPTIONS, "/api/nothing-here"),
        Case::get("/api/nothing-here"),
        Case::get("/api/nothing-here").header("origin", "http://shop.example"),
        Case::get("/api"),
        Case::get("/api/"),
        Case::new(Method::DELETE, "/api/nothing"),
        Case::get("/api/orders").header("x-request-id", "trace-me-42"),
        Case::get("/api/orders").header("x-request-id", "has space"),
        Case::new(Method::POST, "/api/orders").header("origin", "http://shop.example"),
    ]
}

#[tokio::test]
async fn products_match() {
    assert_equal_answers(Database::default(), &products()).await;
}

#[tokio::test]
async fn orders_match() {
    assert_equal_answers(Database::default(), &orders()).await;
}

#[tokio::test]
async fn batches_and_allocation_match() {
    assert_equal_answers(Database::default(), &batches()).await;
}

#[tokio::test]
async fn imports_cors_request_ids_and_fallbacks_match() {
    assert_equal_answers(Database::default(), &imports_cors_and_fallbacks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_every_endpoint_matches_too() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    let mut cases = products();
    cases.extend(orders());
    cases.extend(batches());
    cases.extend(imports_cors_and_fallbacks());
    assert_equal_answers(schema.database(), &cases).await;
}
