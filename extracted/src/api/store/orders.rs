//! Orders: placed through the API here (one line), or learnt from the monolith's events
//! (any number of lines, with the monolith's id, time and prices).
//!
//! Placing an order takes the units out of stock; deleting it puts them back. The API's flat
//! `sku`/`quantity` fields describe the first line — the monolith's wart, kept for the
//! contract — which the `lines` array completes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{ids, products};
use crate::api::storage::{DbError, Row, Tx, Value};
use crate::misc::clock::Clock;

/// The largest quantity one order line may ask for.
pub(crate) const MAX_QUANTITY: i64 = 1000;

/// An order as the API shows it (fields in the monolith's order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Order {
    pub(crate) id: String,
    /// SKU of the first line (see the module docs).
    pub(crate) sku: String,
    /// Quantity of the first line.
    pub(crate) quantity: i64,
    pub(crate) status: String,
    pub(crate) created_at: String,
    pub(crate) lines: Vec<OrderItem>,
    pub(crate) total_cents: i64,
    pub(crate) currency: String,
}

/// One line of an order, with the name and price it was bought at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderItem {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: i64,
    pub(crate) price_cents: i64,
}

/// Why an order could not be placed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrderError {
    #[error("unknown sku {0}")]
    UnknownSku(String),
    #[error("quantity must be between 1 and {MAX_QUANTITY}, got {0}")]
    InvalidQuantity(i64),
    #[error("only {available} of {sku} left in stock")]
    InsufficientStock { sku: String, available: i64 },
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Place an order for `lines` (SKU, quantity) with a new id, taking the units out of stock.
/// The caller rolls back on error, so a refused line leaves nothing behind.
pub(crate) async fn place_in(
    tx: &mut Tx,
    clock: &Clock,
    lines: &[(String, i64)],
) -> Result<Order, OrderError> {
    let id = ids::next_order_id(tx, clock).await?;
    let created_at = clock.timestamp();
    insert_head(tx, &id, "placed", &created_at).await?;
    for (n, (sku, quantity)) in lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(quantity) {
            return Err(OrderError::InvalidQuantity(*quantity));
        }
        let Some(product) = products::one_in(tx, sku).await? else {
            return Err(OrderError::UnknownSku(sku.clone()));
        };
        if product.stock < *quantity {
            return Err(OrderError::InsufficientStock {
                sku: sku.clone(),
                available: product.stock,
            });
        }
        products::add_stock_in(tx, sku, -quantity).await?;
        let item = OrderItem {
            sku: sku.clone(),
            name: product.name,
            quantity: *quantity,
            price_cents: product.price_cents,
        };
        insert_line(tx, &id, n, &item).await?;
    }
    let order = one_in(tx, &id).await?;
    order.ok_or(OrderError::Database(DbError::Column {
        column: 0,
        wanted: "the order just placed",
        found: "nothing",
    }))
}

/// Record an order the monolith placed, as it placed it, taking its units out of stock.
/// `false` (and nothing changed) when an order with this id is already here.
pub(crate) async fn record_in(
    tx: &mut Tx,
    id: &str,
    status: &str,
    created_at: &str,
    lines: &[OrderItem],
) -> Result<bool, DbError> {
    let inserted = tx
        .execute(
            "INSERT INTO orders (id, status, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
            &[id.into(), status.into(), created_at.into()],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    for (n, item) in lines.iter().enumerate() {
        products::add_stock_in(tx, &item.sku, -item.quantity).await?;
        insert_line(tx, id, n, item).await?;
    }
    ids::saw_order_id(tx, id).await?;
    Ok(true)
}

async fn insert_head(tx: &mut Tx, id: &str, status: &str, created_at: &str) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO orders (id, status, created_at) VALUES ($1, $2, $3)",
        &[id.into(), status.into(), created_at.into()],
    )
    .await?;
    Ok(())
}

async fn insert_line(tx: &mut Tx, id: &str, n: usize, item: &OrderItem) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO order_lines (order_id, line, sku, name, quantity, price_cents)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            id.into(),
            Value::Int(i64::try_from(n).unwrap_or(i64::MAX)),
            item.sku.as_str().into(),
            item.name.as_str().into(),
            item.quantity.into(),
            item.price_cents.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Every order, oldest first.
pub(crate) async fn all_in(tx: &mut Tx) -> Result<Vec<Order>, DbError> {
    let heads = tx
        .query(
            "SELECT id, status, created_at FROM orders ORDER BY seq",
            &[],
        )
        .await?;
    let mut lines: HashMap<String, Vec<OrderItem>> = HashMap::new();
    let rows = tx
        .query(
            "SELECT order_id, sku, name, quantity, price_cents FROM order_lines
             ORDER BY order_id, line",
            &[],
        )
        .await?;
    for row in &rows {
        lines.entry(row.text(0)?).or_default().push(item(row, 1)?);
    }
    heads
        .iter()
        .map(|head| {
            let id = head.text(0)?;
            let items = lines.remove(&id).unwrap_or_default();
            Ok(order(id, head.text(1)?, head.text(2)?, items))
        })
        .collect()
}

/// One order, if it exists.
pub(crate) async fn one_in(tx: &mut Tx, id: &str) -> Result<Option<Order>, DbError> {
    let Some(head) = tx
        .query_opt(
            "SELECT status, created_at FROM orders WHERE id = $1",
            &[id.into()],
        )
        .await?
    else {
        return Ok(None);
    };
    let items = tx
        .query(
            "SELECT sku, name, quantity, price_cents FROM order_lines WHERE order_id = $1
             ORDER BY line",
            &[id.into()],
        )
        .await?
        .iter()
        .map(|row| item(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(order(
        id.to_owned(),
        head.text(0)?,
        head.text(1)?,
        items,
    )))
}

/// Delete an order and put its units back in stock; `None` if there was no such order,
/// else the SKUs it held.
pub(crate) async fn delete_in(tx: &mut Tx, id: &str) -> Result<Option<Vec<String>>, DbError> {
    let Some(order) = one_in(tx, id).await? else {
        return Ok(None);
    };
    for line in &order.lines {
        products::add_stock_in(tx, &line.sku, line.quantity).await?;
    }
    tx.execute("DELETE FROM orders WHERE id = $1", &[id.into()])
        .await?;
    Ok(Some(order.lines.into_iter().map(|line| line.sku).collect()))
}

fn item(row: &Row, from: usize) -> Result<OrderItem, DbError> {
    Ok(OrderItem {
        sku: row.text(from)?,
        name: row.text(from + 1)?,
        quantity: row.int(from + 2)?,
        price_cents: row.int(from + 3)?,
    })
}

fn order(id: String, status: String, created_at: String, lines: Vec<OrderItem>) -> Order {
    let (sku, quantity) = lines
        .first()
        .map(|line| (line.sku.clone(), line.quantity))
        .unwrap_or_default();
    Order {
        id,
        sku,
        quantity,
        status,
        created_at,
        total_cents: lines.iter().map(|l| l.quantity * l.price_cents).sum(),
        currency: "USD".to_owned(),
        lines,
    }
}
