//! `/api/batches` and `/api/allocate`: stock batches and allocating order lines to them
//! (rules in `allocation`). Every change also refreshes the allocation projection of the
//! batch's SKU (`store::projection`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Api;
use super::allocation::OrderLine;
use super::error::{JsonBody, Problem, check_identifier};
use super::store::batches::{self, Which};
use super::store::projection;
use super::store::{BatchError, BatchRecord, format_eta, parse_eta};

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
pub(crate) async fn list(State(api): State<Api>) -> Result<Response, Problem> {
    let mut tx = api.store().begin().await?;
    let records = batches::load_in(&mut tx, Which::All).await?;
    tx.commit().await?;
    let batches: Vec<BatchView<'_>> = records.iter().map(view).collect();
    Ok(Json(BatchList {
        batches,
        as_of: api.clock().timestamp(),
    })
    .into_response())
}

/// `GET /api/batches/{reference}` → the batch, or 404.
pub(crate) async fn show(
    State(api): State<Api>,
    Path(reference): Path<String>,
) -> Result<Response, Problem> {
    let mut tx = api.store().begin().await?;
    let record = batches::one_in(&mut tx, &reference)
        .await?
        .ok_or(BatchError::NotFound(reference))?;
    tx.commit().await?;
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
    State(api): State<Api>,
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
    let mut tx = api.store().begin().await?;
    let now = api.clock().timestamp();
    let record =
        batches::create_in(&mut tx, &new.reference, &new.sku, new.quantity, eta, &now).await?;
    projection::recompute_in(&mut tx, &new.sku).await?;
    tx.commit().await?;
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
    State(api): State<Api>,
    Path(reference): Path<String>,
    JsonBody(change): JsonBody<QuantityChange>,
) -> Result<Response, Problem> {
    check_quantity("quantity", change.quantity, 0)?;
    let mut tx = api.store().begin().await?;
    let (record, released) =
        batches::change_quantity_in(&mut tx, &reference, change.quantity).await?;
    projection::recompute_in(&mut tx, &record.batch.sku).await?;
    tx.commit().await?;
    Ok(Json(QuantityChanged {
        batch: view(&record),
        deallocated: released,
        as_of: api.clock().timestamp(),
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
    State(api): State<Api>,
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
    let mut tx = api.store().begin().await?;
    let allocated = batches::allocate_in(&mut tx, &line, &api.clock().timestamp()).await?;
    if allocated.new {
        projection::recompute_in(&mut tx, &line.sku).await?;
    }
    tx.commit().await?;
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
