//! The allocation projection: which batch each line of each placed order is allocated to,
//! by the monolith's allocation rules (`allocation::choose`: warehouse stock first, then the
//! earliest shipment).
//!
//! It is a pure function of the facts stored (batches, their explicit allocations, placed
//! orders), recomputed for a SKU whenever one of them changes. So it does not depend on the
//! order in which events arrived: orders are taken by `created_at`, then id, and an order line
//! that `POST /api/allocate` already placed keeps that batch. A line no batch can take
//! whole has no batch (`batchref: null`). Rebuilding from a replay gives the same rows.

use serde::Serialize;

use super::batches::{self, Which};
use crate::api::allocation::{self, Batch, OrderLine};
use crate::api::storage::{DbError, Tx, Value};

/// Where one order line is allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LineAllocation {
    pub(crate) line: i64,
    pub(crate) sku: String,
    pub(crate) qty: i64,
    /// The batch, or `None` when no batch has room for the whole line.
    pub(crate) batchref: Option<String>,
}

/// Recompute the projection of every order line of `sku`.
pub(crate) async fn recompute_in(tx: &mut Tx, sku: &str) -> Result<(), DbError> {
    let mut batches: Vec<Batch> = batches::load_in(tx, Which::Sku(sku))
        .await?
        .into_iter()
        .map(|record| record.batch)
        .collect();
    let lines = tx
        .query(
            "SELECT l.order_id, l.line, l.quantity FROM order_lines l
             JOIN orders o ON o.id = l.order_id
             WHERE l.sku = $1 ORDER BY o.created_at, o.id, l.line",
            &[sku.into()],
        )
        .await?;
    tx.execute(
        "DELETE FROM order_allocations WHERE sku = $1",
        &[sku.into()],
    )
    .await?;
    for row in &lines {
        let line = OrderLine {
            orderid: row.text(0)?,
            sku: sku.to_owned(),
            qty: row.int(2)?,
        };
        let batchref = place(&mut batches, &line);
        tx.execute(
            "INSERT INTO order_allocations (order_id, line, sku, qty, batchref)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                line.orderid.as_str().into(),
                Value::Int(row.int(1)?),
                sku.into(),
                line.qty.into(),
                batchref.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// The batch for `line`: its explicit allocation if it has one, else the rules' choice
/// (which then takes the room in that batch).
fn place(batches: &mut [Batch], line: &OrderLine) -> Option<String> {
    let explicit = batches.iter().find(|batch| {
        batch
            .allocations
            .iter()
            .any(|a| a.orderid == line.orderid && a.sku == line.sku)
    });
    if let Some(batch) = explicit {
        return Some(batch.reference.clone());
    }
    let chosen = allocation::choose(batches, line).ok()?.reference.clone();
    let batch = batches.iter_mut().find(|batch| batch.reference == chosen)?;
    batch.allocations.push(line.clone());
    Some(chosen)
}

/// Recompute the projection for each of these SKUs (each once).
pub(crate) async fn recompute_skus_in(tx: &mut Tx, skus: &[String]) -> Result<(), DbError> {
    let mut done: Vec<&str> = Vec::new();
    for sku in skus {
        if !done.contains(&sku.as_str()) {
            recompute_in(tx, sku).await?;
            done.push(sku);
        }
    }
    Ok(())
}

/// The projection of one order, by line; empty for an unknown order.
pub(crate) async fn of_order_in(
    tx: &mut Tx,
    order_id: &str,
) -> Result<Vec<LineAllocation>, DbError> {
    tx.query(
        "SELECT line, sku, qty, batchref FROM order_allocations WHERE order_id = $1 ORDER BY line",
        &[order_id.into()],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(LineAllocation {
            line: row.int(0)?,
            sku: row.text(1)?,
            qty: row.int(2)?,
            batchref: row.opt_text(3)?,
        })
    })
    .collect()
}

/// The whole projection as (order id, line, batch) rows, for tests comparing rebuilds.
#[cfg(test)]
pub(crate) async fn all_in(tx: &mut Tx) -> Result<Vec<(String, i64, Option<String>)>, DbError> {
    tx.query(
        "SELECT order_id, line, batchref FROM order_allocations ORDER BY order_id, line",
        &[],
    )
    .await?
    .iter()
    .map(|row| Ok((row.text(0)?, row.int(1)?, row.opt_text(2)?)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn batch(reference: &str, purchased: i64, eta: Option<time::Date>) -> Batch {
        Batch {
            reference: reference.into(),
            sku: "LAMP".into(),
            purchased,
            eta,
            allocations: Vec::new(),
        }
    }

    fn line(orderid: &str, qty: i64) -> OrderLine {
        OrderLine {
            orderid: orderid.into(),
            sku: "LAMP".into(),
            qty,
        }
    }

    #[test]
    fn lines_fill_stock_then_shipments_then_none() {
        let mut batches = vec![
            batch("ship", 5, Some(date!(2026 - 02 - 01))),
            batch("stock", 5, None),
        ];
        assert_eq!(
            place(&mut batches, &line("o1", 4)).as_deref(),
            Some("stock")
        );
        assert_eq!(place(&mut batches, &line("o2", 4)).as_deref(), Some("ship"));
        assert_eq!(place(&mut batches, &line("o3", 4)), None);
        assert_eq!(
            place(&mut batches, &line("o4", 1)).as_deref(),
            Some("stock")
        );
    }

    #[test]
    fn an_explicit_allocation_stands() {
        let mut batches = vec![
            batch("stock", 5, None),
            batch("ship", 5, Some(date!(2026 - 02 - 01))),
        ];
        batches[1].allocations.push(line("o1", 2));
        assert_eq!(place(&mut batches, &line("o1", 2)).as_deref(), Some("ship"));
        assert_eq!(batches[1].allocations.len(), 1);
    }
}
