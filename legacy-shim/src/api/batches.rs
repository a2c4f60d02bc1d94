//! `/api/batches` and `/api/allocate`: stock batches and allocating order lines to them
//! (rules in `allocation`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{JsonBody, check_identifier};
use crate::Shop;
use crate::allocation::OrderLine;
use crate::error::Problem;
use crate::store::{BatchError, BatchRecord};
use crate::store::{format_eta, parse_eta};

/// The largest batch or line quantity accepted.
const MAX_QUANTITY: i64 = 1_000_000;

/// A batch as the API shows it.
#[derive(Debug, Serialize)]
struct BatchView<'a> {
    reference: &'a str,
    sku: &'a str,
    quantity: i64,
    allocated: i64,
    available: i64,
    eta: Option<String>,
    allocations: &'a [OrderLine],
    created_at: &'a str,
}

/// The batch list answer.
#[derive(Debug, Serialize)]
struct BatchList<'a> {
    batches: Vec<BatchView<'a>>,
    as_of: String,
}

/// The answer to a quantity change: the batch after it and the released lines.
#[derive(Debug, Serialize)]
struct QuantityChanged<'a> {
    batch: BatchView<'a>,
    deallocated: Vec<OrderLine>,
    as_of: String,
}

/// The answer to an allocation.
#[derive(Debug, Serialize)]
struct AllocationView {
    batchref: String,
    orderid: String,
    sku: String,
    qty: i64,
    allocated_at: String,
}

fn view(record: &BatchRecord) -> BatchView<'_> {
    let batch = &record.batch;
    BatchView {
        reference: &batch.reference,
        sku: &batch.sku,
        quantity: batch.purchased,
        allocated: batch.allocated(),
        available: batch.available(),
        eta: batch.eta.map(format_eta),
        allocations: &batch.allocations,
        created_at: &record.created_at,
    }
}

/// `GET /api/batches` → `{"batches": [...], "as_of": …}`, by reference.
pub(crate) async fn list(State(shop): State<Shop>) -> Result<Response, Problem> {
    let records = shop.store().batches()?;
    let batches: Vec<BatchView<'_>> = records.iter().map(view).collect();
    Ok(Json(BatchList {
        batches,
        as_of: shop.clock().timestamp(),
    })
    .into_response())
}

/// `GET /api/batches/{reference}` → the batch, or 404.
pub(crate) async fn show(
    State(shop): State<Shop>,
    Path(reference): Path<String>,
) -> Result<Response, Problem> {
    let record = shop
        .store()
        .batch(&reference)?
        .ok_or(BatchError::NotFound(reference))?;
    Ok(Json(view(&record)).into_response())
}

/// The body of `POST /api/batches`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewBatch {
    reference: String,
    sku: String,
    quantity: i64,
    /// `YYYY-MM-DD`, or null/absent for stock already in the warehouse.
    #[serde(default)]
    eta: Option<String>,
}

/// `POST /api/batches` → 201 with `Location` and the batch; 409 if the reference exists.
pub(crate) async fn create(
    State(shop): State<Shop>,
    JsonBody(new): JsonBody<NewBatch>,
) -> Result<Response, Problem> {
    check_identifier("reference", &new.reference)?;
    check_identifier("sku", &new.sku)?;
    check_quantity("quantity", new.quantity, 1)?;
    let eta = match new.eta.as_deref() {
        None => None,
        Some(text) => Some(parse_eta(text).ok_or_else(|| {
            Problem::unprocessable(
                "invalid_eta",
                format!("eta must be YYYY-MM-DD or null, got {text:?}"),
            )
        })?),
    };
    let record = shop
        .store()
        .create_batch(&new.reference, &new.sku, new.quantity, eta)?;
    let location = format!("/api/batches/{}", record.batch.reference);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        Json(view(&record)),
    )
        .into_response())
}

/// The body of `PATCH /api/batches/{reference}`.
#[derive(Debug, Deserialize)]
pub(crate) struct QuantityChange {
    quantity: i64,
}

/// `PATCH /api/batches/{reference}` → `{"batch": …, "deallocated": [...]}`: the batch after
/// the change and the order lines that no longer fit (newest first).
pub(crate) async fn change_quantity(
    State(shop): State<Shop>,
    Path(reference): Path<String>,
    JsonBody(change): JsonBody<QuantityChange>,
) -> Result<Response, Problem> {
    check_quantity("quantity", change.quantity, 0)?;
    let (record, released) = shop
        .store()
        .change_batch_quantity(&reference, change.quantity)?;
    Ok(Json(QuantityChanged {
        batch: view(&record),
        deallocated: released,
        as_of: shop.clock().timestamp(),
    })
    .into_response())
}

/// The body of `POST /api/allocate`.
#[derive(Debug, Deserialize)]
pub(crate) struct AllocationRequest {
    orderid: String,
    sku: String,
    qty: i64,
}

/// `POST /api/allocate` → 201 `{"batchref": …}` (200 when the line was already allocated);
/// 400 for a SKU no batch holds, 409 out of stock.
pub(crate) async fn allocate(
    State(shop): State<Shop>,
    JsonBody(request): JsonBody<AllocationRequest>,
) -> Result<Response, Problem> {
    check_identifier("orderid", &request.orderid)?;
    check_identifier("sku", &request.sku)?;
    check_quantity("qty", request.qty, 1)?;
    let line = OrderLine {
        orderid: request.orderid,
        sku: request.sku,
        qty: request.qty,
    };
    let allocated = shop.store().allocate(&line)?;
    let status = if allocated.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = AllocationView {
        batchref: allocated.batchref,
        orderid: allocated.line.orderid,
        sku: allocated.line.sku,
        qty: allocated.line.qty,
        allocated_at: allocated.allocated_at,
    };
    Ok((status, Json(body)).into_response())
}

fn check_quantity(field: &str, value: i64, min: i64) -> Result<(), Problem> {
    if (min..=MAX_QUANTITY).contains(&value) {
        Ok(())
    } else {
        Err(Problem::unprocessable(
            "invalid_quantity",
            format!("{field} must be between {min} and {MAX_QUANTITY}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_support::{Reply, call, get, json_request, router};

    async fn post(app: &axum::Router, uri: &str, body: Value) -> Reply {
        call(app, json_request("POST", uri, body)).await
    }

    async fn batch(app: &axum::Router, reference: &str, qty: i64, eta: Value) {
        let reply = post(
            app,
            "/api/batches",
            json!({"reference": reference, "sku": "T-SOFA", "quantity": qty, "eta": eta}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        assert_eq!(
            reply.header("location"),
            format!("/api/batches/{reference}")
        );
    }

    async fn allocate(app: &axum::Router, orderid: &str, qty: i64) -> Reply {
        post(
            app,
            "/api/allocate",
            json!({"orderid": orderid, "sku": "T-SOFA", "qty": qty}),
        )
        .await
    }

    #[tokio::test]
    async fn in_stock_batches_come_before_shipments() {
        let app = router();
        batch(&app, "t-ship", 100, json!("2026-01-10")).await;
        batch(&app, "t-stock", 100, Value::Null).await;
        let reply = allocate(&app, "o1", 10).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(reply.json()["batchref"], "t-stock");
        assert_eq!(allocate(&app, "o1", 10).await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn earliest_shipment_first_then_out_of_stock() {
        let app = router();
        batch(&app, "t-late", 10, json!("2026-03-01")).await;
        batch(&app, "t-soon", 10, json!("2026-02-01")).await;
        assert_eq!(allocate(&app, "o1", 8).await.json()["batchref"], "t-soon");
        assert_eq!(allocate(&app, "o2", 8).await.json()["batchref"], "t-late");
        let none = allocate(&app, "o3", 8).await;
        assert_eq!(none.status, StatusCode::CONFLICT);
        assert_eq!(none.json()["error"], "out of stock");
        assert_eq!(none.json()["code"], "out_of_stock");
        let invalid = post(
            &app,
            "/api/allocate",
            json!({"orderid": "o4", "sku": "NO-SUCH", "qty": 1}),
        )
        .await;
        assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
        assert_eq!(invalid.json()["code"], "invalid_sku");
    }

    #[tokio::test]
    async fn shrinking_a_batch_deallocates_lines_that_no_longer_fit() {
        let app = router();
        batch(&app, "t-b", 10, Value::Null).await;
        allocate(&app, "o1", 5).await;
        allocate(&app, "o2", 3).await;
        allocate(&app, "o3", 2).await;
        let reply = call(
            &app,
            json_request("PATCH", "/api/batches/t-b", json!({"quantity": 6})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        let json = reply.json();
        assert_eq!(
            json["deallocated"],
            json!([{"orderid": "o3", "sku": "T-SOFA", "qty": 2}, {"orderid": "o2", "sku": "T-SOFA", "qty": 3}])
        );
        assert_eq!(json["batch"]["quantity"], 6);
        assert_eq!(json["batch"]["available"], 1);
        let stored = get(&app, "/api/batches/t-b").await.json();
        assert_eq!(
            stored["allocations"],
            json!([{"orderid": "o1", "sku": "T-SOFA", "qty": 5}])
        );
    }

    #[tokio::test]
    async fn batch_errors() {
        let app = router();
        let list = get(&app, "/api/batches").await.json();
        assert_eq!(list["batches"][0]["reference"], "batch-001");
        assert_eq!(list["batches"][0]["eta"], Value::Null);
        assert_eq!(list["batches"][1]["eta"], "2026-02-15");
        let dup = post(
            &app,
            "/api/batches",
            json!({"reference": "batch-001", "sku": "X", "quantity": 1}),
        )
        .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        let bad_eta = post(
            &app,
            "/api/batches",
            json!({"reference": "t-x", "sku": "X", "quantity": 1, "eta": "soon"}),
        )
        .await;
        assert_eq!(bad_eta.status, StatusCode::UNPROCESSABLE_ENTITY);
        let missing = call(
            &app,
            json_request("PATCH", "/api/batches/nope", json!({"quantity": 1})),
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let negative = call(
            &app,
            json_request("PATCH", "/api/batches/batch-001", json!({"quantity": -1})),
        )
        .await;
        assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            get(&app, "/api/batches/nope").await.status,
            StatusCode::NOT_FOUND
        );
    }
}
