//! Batches of stock and the order lines allocated to them; the rules live in `allocation`.

use std::collections::HashMap;

use time::Date;
use time::macros::format_description;

use crate::api::allocation::{self, AllocationError, Batch, OrderLine};
use crate::api::storage::{DbError, Row, Tx, Value};

/// A stored batch and when it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchRecord {
    pub(crate) batch: Batch,
    pub(crate) created_at: String,
}

/// The outcome of an allocation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allocated {
    pub(crate) batchref: String,
    pub(crate) line: OrderLine,
    pub(crate) allocated_at: String,
    /// `false` when this line was already allocated (the request was a repeat).
    pub(crate) new: bool,
}

/// Why a batch operation was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    #[error("no batch {0}")]
    NotFound(String),
    #[error("batch {0} already exists")]
    Exists(String),
    #[error(transparent)]
    Allocation(#[from] AllocationError),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Format an eta as stored and shown: `YYYY-MM-DD`.
pub(crate) fn format_eta(eta: Date) -> String {
    eta.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// Parse a `YYYY-MM-DD` eta.
pub(crate) fn parse_eta(text: &str) -> Option<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

/// Which batches to load.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Which<'a> {
    All,
    Reference(&'a str),
    Sku(&'a str),
}

/// Load batches with their allocations (oldest first), by reference.
pub(crate) async fn load_in(tx: &mut Tx, which: Which<'_>) -> Result<Vec<BatchRecord>, DbError> {
    const SELECT: &str = "SELECT reference, sku, quantity, eta, created_at FROM batches";
    const LINES: &str = "SELECT batchref, orderid, sku, qty FROM allocations";
    let (heads, lines) = match which {
        Which::All => (
            tx.query(&format!("{SELECT} ORDER BY reference"), &[])
                .await?,
            tx.query(&format!("{LINES} ORDER BY seq"), &[]).await?,
        ),
        Which::Reference(reference) => (
            tx.query(&format!("{SELECT} WHERE reference = $1"), &[reference.into()])
                .await?,
            tx.query(
                &format!("{LINES} WHERE batchref = $1 ORDER BY seq"),
                &[reference.into()],
            )
            .await?,
        ),
        Which::Sku(sku) => (
            tx.query(
                &format!("{SELECT} WHERE sku = $1 ORDER BY reference"),
                &[sku.into()],
            )
            .await?,
            tx.query(
                &format!("{LINES} WHERE batchref IN (SELECT reference FROM batches WHERE sku = $1) ORDER BY seq"),
                &[sku.into()],
            )
            .await?,
        ),
    };
    let mut allocations: HashMap<String, Vec<OrderLine>> = HashMap::new();
    for row in &lines {
        allocations
            .entry(row.text(0)?)
            .or_default()
            .push(OrderLine {
                orderid: row.text(1)?,
                sku: row.text(2)?,
                qty: row.int(3)?,
            });
    }
    heads
        .iter()
        .map(|row| record(row, &mut allocations))
        .collect()
}

fn record(
    row: &Row,
    allocations: &mut HashMap<String, Vec<OrderLine>>,
) -> Result<BatchRecord, DbError> {
    let reference = row.text(0)?;
    Ok(BatchRecord {
        batch: Batch {
            sku: row.text(1)?,
            purchased: row.int(2)?,
            eta: row.opt_text(3)?.as_deref().and_then(parse_eta),
            allocations: allocations.remove(&reference).unwrap_or_default(),
            reference,
        },
        created_at: row.text(4)?,
    })
}

/// One batch, if it exists.
pub(crate) async fn one_in(tx: &mut Tx, reference: &str) -> Result<Option<BatchRecord>, DbError> {
    Ok(load_in(tx, Which::Reference(reference))
        .await?
        .into_iter()
        .next())
}

/// Add a batch; its reference must be new.
pub(crate) async fn create_in(
    tx: &mut Tx,
    reference: &str,
    sku: &str,
    quantity: i64,
    eta: Option<Date>,
    created_at: &str,
) -> Result<BatchRecord, BatchError> {
    let inserted = tx
        .execute(
            "INSERT INTO batches (reference, sku, quantity, eta, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (reference) DO NOTHING",
            &[
                reference.into(),
                sku.into(),
                quantity.into(),
                eta.map(format_eta).into(),
                created_at.into(),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(BatchError::Exists(reference.to_owned()));
    }
    one_in(tx, reference)
        .await?
        .ok_or_else(|| BatchError::NotFound(reference.to_owned()))
}

/// Change a batch's quantity, releasing the newest allocations that no longer fit.
pub(crate) async fn change_quantity_in(
    tx: &mut Tx,
    reference: &str,
    quantity: i64,
) -> Result<(BatchRecord, Vec<OrderLine>), BatchError> {
    let mut record = one_in(tx, reference)
        .await?
        .ok_or_else(|| BatchError::NotFound(reference.to_owned()))?;
    let released = record.batch.change_quantity(quantity);
    set_quantity_in(tx, reference, quantity).await?;
    release_in(tx, reference, &released).await?;
    Ok((record, released))
}

/// Set a batch's purchased quantity (nothing else).
pub(crate) async fn set_quantity_in(
    tx: &mut Tx,
    reference: &str,
    quantity: i64,
) -> Result<u64, DbError> {
    tx.execute(
        "UPDATE batches SET quantity = $2 WHERE reference = $1",
        &[reference.into(), quantity.into()],
    )
    .await
}

/// Remove these lines' allocations from a batch.
pub(crate) async fn release_in(
    tx: &mut Tx,
    reference: &str,
    lines: &[OrderLine],
) -> Result<(), DbError> {
    for line in lines {
        tx.execute(
            "DELETE FROM allocations WHERE batchref = $1 AND orderid = $2 AND sku = $3",
            &[
                reference.into(),
                line.orderid.as_str().into(),
                line.sku.as_str().into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Allocate `line` to the best batch (see `allocation::choose`); a line already allocated
/// answers with its existing batch.
pub(crate) async fn allocate_in(
    tx: &mut Tx,
    line: &OrderLine,
    now: &str,
) -> Result<Allocated, BatchError> {
    if let Some(existing) = existing_in(tx, &line.orderid, &line.sku).await? {
        return Ok(existing);
    }
    let batches: Vec<Batch> = load_in(tx, Which::Sku(&line.sku))
        .await?
        .into_iter()
        .map(|record| record.batch)
        .collect();
    let batchref = allocation::choose(&batches, line)?.reference.clone();
    record_allocation_in(tx, &batchref, line, now).await?;
    Ok(Allocated {
        batchref,
        line: line.clone(),
        allocated_at: now.to_owned(),
        new: true,
    })
}

/// The allocation of an order's SKU, if it has one.
pub(crate) async fn existing_in(
    tx: &mut Tx,
    orderid: &str,
    sku: &str,
) -> Result<Option<Allocated>, DbError> {
    let Some(row) = tx
        .query_opt(
            "SELECT batchref, qty, allocated_at FROM allocations WHERE orderid = $1 AND sku = $2",
            &[orderid.into(), sku.into()],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Allocated {
        batchref: row.text(0)?,
        line: OrderLine {
            orderid: orderid.to_owned(),
            sku: sku.to_owned(),
            qty: row.int(1)?,
        },
        allocated_at: row.text(2)?,
        new: false,
    }))
}

/// Store an allocation as decided (here or by the monolith); `false` if the order's SKU was
/// already allocated.
pub(crate) async fn record_allocation_in(
    tx: &mut Tx,
    batchref: &str,
    line: &OrderLine,
    allocated_at: &str,
) -> Result<bool, DbError> {
    let inserted = tx
        .execute(
            "INSERT INTO allocations (batchref, orderid, sku, qty, allocated_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (orderid, sku) DO NOTHING",
            &[
                batchref.into(),
                line.orderid.as_str().into(),
                line.sku.as_str().into(),
                Value::Int(line.qty),
                allocated_at.into(),
            ],
        )
        .await?;
    Ok(inserted > 0)
}
