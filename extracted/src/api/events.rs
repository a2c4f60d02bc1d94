//! Applying the monolith's domain events to the service's own data — how it keeps in step
//! while the monolith still takes the writes.
//!
//! The proxy derives these events from the monolith's traffic (`[[routes.emit]]` rules in
//! routes.toml) and publishes them on its bus:
//!
//! | type | from | data |
//! |------|------|------|
//! | `shop.order.placed` | `POST /api/orders` → 201, a cart checkout → 201, or the page checkout → 303 (only `order_id`: the consumer completes it from the monolith first, `crate::monolith`) | `order_id`, `sku`, `quantity`, `created_at`, `status`, `lines` |
//! | `shop.order.cancelled` | `DELETE /api/orders/{id}` → 204 | `order_id` |
//! | `shop.product.updated` | `PUT /api/products/{sku}` → 200 | the product after the change |
//! | `shop.batch.added` | `POST /api/batches` → 201 | `reference`, `sku`, `quantity`, `eta`, `created_at` |
//! | `shop.batch.quantity_changed` | `PATCH /api/batches/{reference}` → 200 | `reference`, `quantity`, `deallocated` |
//! | `shop.line.allocated` | `POST /api/allocate` → 201 | `batchref`, `orderid`, `sku`, `qty`, `allocated_at` |
//!
//! Each event is applied in one transaction together with its row in `processed_events`
//! (the id it was applied under and the outcome), so an event id is applied at most once:
//! redelivery and `strangler events replay` change nothing. Facts carry the monolith's own
//! ids, times and prices, so the data read back through this service's API is the monolith's.
//! Every change refreshes the allocation projection of the SKUs it touches
//! (`store::projection`), which depends only on the facts, not on their arrival order.
//!
//! An event whose data cannot be applied (a field missing or of the wrong type, a batch or
//! product this service has never heard of) is `Rejected`: recorded as processed with the
//! reason, logged, and not retried — sending it again would not help.

#[cfg(test)]
mod tests;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use strangler::events::Event;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::allocation::OrderLine;
use super::storage::{DbError, Tx};
use super::store::batches;
use super::store::projection;
use super::store::{BatchError, OrderItem, ProductUpdate, Store, orders, parse_eta, products};
use crate::misc::clock::rfc3339;

/// An order placed through the monolith's API.
pub const ORDER_PLACED: &str = "shop.order.placed";
/// An order deleted through the monolith's API (its stock returned).
pub const ORDER_CANCELLED: &str = "shop.order.cancelled";
/// A product's name, description, price or stock changed.
pub const PRODUCT_UPDATED: &str = "shop.product.updated";
/// A new batch of stock.
pub const BATCH_ADDED: &str = "shop.batch.added";
/// A batch's quantity changed, releasing the allocations that no longer fit.
pub const BATCH_QUANTITY_CHANGED: &str = "shop.batch.quantity_changed";
/// An order line allocated to a batch by `POST /api/allocate`.
pub const LINE_ALLOCATED: &str = "shop.line.allocated";

/// Every event type the service consumes.
pub const EVENT_TYPES: &[&str] = &[
    ORDER_PLACED,
    ORDER_CANCELLED,
    PRODUCT_UPDATED,
    BATCH_ADDED,
    BATCH_QUANTITY_CHANGED,
    LINE_ALLOCATED,
];

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The event changed the service's data.
    Changed,
    /// Its fact was already here (e.g. an order this service placed itself): nothing changed.
    Unchanged,
    /// This event id was processed before: skipped.
    Duplicate,
    /// Its data cannot be applied; recorded with this reason so it is not retried.
    Rejected(String),
    /// Not a type this service consumes.
    Ignored,
}

impl Applied {
    /// The outcome as recorded in `processed_events` and logged.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Applied::Changed => "changed",
            Applied::Unchanged => "unchanged",
            Applied::Duplicate => "duplicate",
            Applied::Rejected(_) => "rejected",
            Applied::Ignored => "ignored",
        }
    }
}

/// Apply one event to the store, at most once per event id. An `Err` means nothing was
/// changed and the event should be applied again later (the database is unavailable).
pub(crate) async fn apply(store: &Store, event: &Event) -> Result<Applied, DbError> {
    if !EVENT_TYPES.contains(&event.kind.as_str()) {
        return Ok(Applied::Ignored);
    }
    let mut tx = store.begin().await?;
    if processed(&mut tx, &event.id).await? {
        tx.commit().await?;
        return Ok(Applied::Duplicate);
    }
    let outcome = match change(&mut tx, event).await? {
        Ok(outcome) => outcome,
        Err(reason) => {
            // Undo whatever the event half did; keep only the record that it was refused.
            drop(tx);
            tx = store.begin().await?;
            Applied::Rejected(reason)
        }
    };
    record(&mut tx, event, &outcome, &store.clock().timestamp()).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Whether this event id was processed before.
async fn processed(tx: &mut Tx, id: &str) -> Result<bool, DbError> {
    Ok(tx
        .query_opt(
            "SELECT outcome FROM processed_events WHERE id = $1",
            &[id.into()],
        )
        .await?
        .is_some())
}

async fn record(tx: &mut Tx, event: &Event, outcome: &Applied, now: &str) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO processed_events (id, type, outcome, processed_at) VALUES ($1, $2, $3, $4)",
        &[
            event.id.as_str().into(),
            event.kind.as_str().into(),
            outcome.as_str().into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// The change one event makes: `Ok(Err(reason))` when its data cannot be applied.
async fn change(tx: &mut Tx, event: &Event) -> Result<Result<Applied, String>, DbError> {
    match event.kind.as_str() {
        ORDER_PLACED => match data(event) {
            Ok(placed) => order_placed(tx, event, placed).await,
            Err(reason) => Ok(Err(reason)),
        },
        ORDER_CANCELLED => match data(event) {
            Ok(cancelled) => order_cancelled(tx, event, cancelled).await,
            Err(reason) => Ok(Err(reason)),
        },
        PRODUCT_UPDATED => match data(event) {
            Ok(updated) => product_updated(tx, updated).await,
            Err(reason) => Ok(Err(reason)),
        },
        BATCH_ADDED => match data(event) {
            Ok(added) => batch_added(tx, added).await,
            Err(reason) => Ok(Err(reason)),
        },
        BATCH_QUANTITY_CHANGED => match data(event) {
            Ok(changed) => batch_quantity_changed(tx, changed).await,
            Err(reason) => Ok(Err(reason)),
        },
        LINE_ALLOCATED => match data(event) {
            Ok(allocated) => line_allocated(tx, allocated).await,
            Err(reason) => Ok(Err(reason)),
        },
        _ => Ok(Ok(Applied::Ignored)),
    }
}

/// The event's data as `T`, or why it is not.
fn data<T: DeserializeOwned>(event: &Event) -> Result<T, String> {
    event
        .data
        .parse()
        .map_err(|err| format!("{} data does not fit: {err}", event.kind))
}

/// `shop.order.placed`. The lines with names and prices come from the monolith's answer; an
/// event with only `sku` and `quantity` (an older rule) is completed from the catalogue here.
#[derive(Debug, Deserialize)]
struct OrderPlaced {
    order_id: String,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    lines: Option<Vec<OrderItem>>,
}

async fn order_placed(
    tx: &mut Tx,
    event: &Event,
    placed: OrderPlaced,
) -> Result<Result<Applied, String>, DbError> {
    let cancelled = tx
        .query_opt(
            "SELECT 1 FROM cancelled_orders WHERE id = $1",
            &[placed.order_id.as_str().into()],
        )
        .await?
        .is_some();
    if cancelled {
        // The cancellation came first (out of order): the order must not come back.
        return Ok(Ok(Applied::Unchanged));
    }
    let lines = match (placed.lines, placed.sku, placed.quantity) {
        (Some(lines), _, _) if !lines.is_empty() => lines,
        (_, Some(sku), Some(quantity)) => {
            let Some(product) = products::one_in(tx, &sku).await? else {
                return Ok(Err(format!(
                    "order {} is for {sku}, a product this service does not know",
                    placed.order_id
                )));
            };
            vec![OrderItem {
                sku,
                name: product.name,
                quantity,
                price_cents: product.price_cents,
            }]
        }
        _ => {
            return Ok(Err(format!(
                "order {} has neither lines nor sku and quantity",
                placed.order_id
            )));
        }
    };
    let created_at = match placed.created_at {
        Some(at) => at,
        None => whole_seconds(&event.time),
    };
    let status = placed.status.unwrap_or_else(|| "placed".to_owned());
    if !orders::record_in(tx, &placed.order_id, &status, &created_at, &lines).await? {
        return Ok(Ok(Applied::Unchanged));
    }
    let skus: Vec<String> = lines.into_iter().map(|line| line.sku).collect();
    projection::recompute_skus_in(tx, &skus).await?;
    Ok(Ok(Applied::Changed))
}

/// An event time (RFC 3339 with milliseconds) to the shop's whole-second form.
fn whole_seconds(time: &str) -> String {
    match OffsetDateTime::parse(time, &Rfc3339) {
        Ok(at) => rfc3339(at.replace_nanosecond(0).unwrap_or(at)),
        Err(_) => time.to_owned(),
    }
}

/// `shop.order.cancelled`.
#[derive(Debug, Deserialize)]
struct OrderCancelled {
    order_id: String,
}

async fn order_cancelled(
    tx: &mut Tx,
    event: &Event,
    cancelled: OrderCancelled,
) -> Result<Result<Applied, String>, DbError> {
    tx.execute(
        "INSERT INTO cancelled_orders (id, cancelled_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        &[
            cancelled.order_id.as_str().into(),
            whole_seconds(&event.time).into(),
        ],
    )
    .await?;
    let Some(skus) = orders::delete_in(tx, &cancelled.order_id).await? else {
        return Ok(Ok(Applied::Unchanged));
    };
    projection::recompute_skus_in(tx, &skus).await?;
    Ok(Ok(Applied::Changed))
}

/// `shop.product.updated`: the product as the monolith answered after the change.
#[derive(Debug, Deserialize)]
struct ProductUpdated {
    sku: String,
    name: String,
    description: String,
    price_cents: i64,
    stock: i64,
    updated_at: String,
}

async fn product_updated(
    tx: &mut Tx,
    updated: ProductUpdated,
) -> Result<Result<Applied, String>, DbError> {
    let update = ProductUpdate {
        name: Some(updated.name),
        description: Some(updated.description),
        price_cents: Some(updated.price_cents),
        stock: Some(updated.stock),
    };
    match products::update_in(tx, &updated.sku, &update, &updated.updated_at).await? {
        Some(_) => Ok(Ok(Applied::Changed)),
        None => Ok(Err(format!(
            "product {} is not one this service knows",
            updated.sku
        ))),
    }
}

/// `shop.batch.added`.
#[derive(Debug, Deserialize)]
struct BatchAdded {
    reference: String,
    sku: String,
    quantity: i64,
    #[serde(default)]
    eta: Option<String>,
    created_at: String,
}

async fn batch_added(tx: &mut Tx, added: BatchAdded) -> Result<Result<Applied, String>, DbError> {
    let eta = match added.eta.as_deref() {
        None => None,
        Some(text) => match parse_eta(text) {
            Some(eta) => Some(eta),
            None => {
                return Ok(Err(format!(
                    "batch {} has eta {text:?}, not YYYY-MM-DD",
                    added.reference
                )));
            }
        },
    };
    let created = batches::create_in(
        tx,
        &added.reference,
        &added.sku,
        added.quantity,
        eta,
        &added.created_at,
    )
    .await;
    match created {
        Ok(_) => {}
        Err(BatchError::Exists(_)) => return Ok(Ok(Applied::Unchanged)),
        Err(BatchError::Database(err)) => return Err(err),
        Err(other) => return Ok(Err(other.to_string())),
    }
    projection::recompute_in(tx, &added.sku).await?;
    Ok(Ok(Applied::Changed))
}

/// `shop.batch.quantity_changed`: the new quantity and the lines the monolith released.
#[derive(Debug, Deserialize)]
struct BatchQuantityChanged {
    reference: String,
    quantity: i64,
    #[serde(default)]
    deallocated: Vec<OrderLine>,
}

async fn batch_quantity_changed(
    tx: &mut Tx,
    changed: BatchQuantityChanged,
) -> Result<Result<Applied, String>, DbError> {
    let Some(record) = batches::one_in(tx, &changed.reference).await? else {
        return Ok(Err(format!(
            "batch {} is not one this service knows",
            changed.reference
        )));
    };
    batches::set_quantity_in(tx, &changed.reference, changed.quantity).await?;
    batches::release_in(tx, &changed.reference, &changed.deallocated).await?;
    projection::recompute_in(tx, &record.batch.sku).await?;
    Ok(Ok(Applied::Changed))
}

/// `shop.line.allocated`.
#[derive(Debug, Deserialize)]
struct LineAllocated {
    batchref: String,
    orderid: String,
    sku: String,
    qty: i64,
    allocated_at: String,
}

async fn line_allocated(
    tx: &mut Tx,
    allocated: LineAllocated,
) -> Result<Result<Applied, String>, DbError> {
    let line = OrderLine {
        orderid: allocated.orderid,
        sku: allocated.sku,
        qty: allocated.qty,
    };
    if !batches::record_allocation_in(tx, &allocated.batchref, &line, &allocated.allocated_at)
        .await?
    {
        return Ok(Ok(Applied::Unchanged));
    }
    projection::recompute_in(tx, &line.sku).await?;
    Ok(Ok(Applied::Changed))
}
