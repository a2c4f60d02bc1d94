//! Batches of stock and the order lines allocated to them; the rules live in `allocation`.

use rusqlite::{Connection, OptionalExtension, params};
use time::Date;
use time::macros::format_description;

use super::Store;
use crate::allocation::{self, AllocationError, Batch, OrderLine};

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
    Database(#[from] rusqlite::Error),
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

impl Store {
    /// Every batch with its allocations, by reference.
    pub(crate) fn batches(&self) -> rusqlite::Result<Vec<BatchRecord>> {
        load(&self.conn(), None, None)
    }

    /// One batch, if it exists.
    pub(crate) fn batch(&self, reference: &str) -> rusqlite::Result<Option<BatchRecord>> {
        Ok(load(&self.conn(), Some(reference), None)?
            .into_iter()
            .next())
    }

    /// Add a batch; its reference must be new.
    pub(crate) fn create_batch(
        &self,
        reference: &str,
        sku: &str,
        quantity: i64,
        eta: Option<Date>,
    ) -> Result<BatchRecord, BatchError> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO batches (reference, sku, quantity, eta, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                reference,
                sku,
                quantity,
                eta.map(format_eta),
                self.clock.timestamp()
            ],
        )?;
        if inserted == 0 {
            return Err(BatchError::Exists(reference.to_owned()));
        }
        load(&conn, Some(reference), None)?
            .into_iter()
            .next()
            .ok_or_else(|| BatchError::NotFound(reference.to_owned()))
    }

    /// Change a batch's quantity, releasing the newest allocations that no longer fit.
    pub(crate) fn change_batch_quantity(
        &self,
        reference: &str,
        quantity: i64,
    ) -> Result<(BatchRecord, Vec<OrderLine>), BatchError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut record = load(&tx, Some(reference), None)?
            .into_iter()
            .next()
            .ok_or_else(|| BatchError::NotFound(reference.to_owned()))?;
        let released = record.batch.change_quantity(quantity);
        tx.execute(
            "UPDATE batches SET quantity = ?2 WHERE reference = ?1",
            params![reference, quantity],
        )?;
        for line in &released {
            tx.execute(
                "DELETE FROM allocations WHERE batchref = ?1 AND orderid = ?2 AND sku = ?3",
                params![reference, line.orderid, line.sku],
            )?;
        }
        tx.commit()?;
        Ok((record, released))
    }

    /// Allocate `line` to the best batch (see `allocation::choose`); a line already
    /// allocated answers with its existing batch.
    pub(crate) fn allocate(&self, line: &OrderLine) -> Result<Allocated, BatchError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: Option<(String, i64, String)> = tx
            .query_row(
                "SELECT batchref, qty, allocated_at FROM allocations WHERE orderid = ?1 AND sku = ?2",
                params![line.orderid, line.sku],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if let Some((batchref, qty, allocated_at)) = existing {
            return Ok(Allocated {
                batchref,
                line: OrderLine {
                    qty,
                    ..line.clone()
                },
                allocated_at,
                new: false,
            });
        }
        let batches: Vec<Batch> = load(&tx, None, Some(&line.sku))?
            .into_iter()
            .map(|record| record.batch)
            .collect();
        let batchref = allocation::choose(&batches, line)?.reference.clone();
        let allocated_at = self.clock.timestamp();
        tx.execute(
            "INSERT INTO allocations (batchref, orderid, sku, qty, allocated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![batchref, line.orderid, line.sku, line.qty, allocated_at],
        )?;
        tx.commit()?;
        Ok(Allocated {
            batchref,
            line: line.clone(),
            allocated_at,
            new: true,
        })
    }
}

/// Load batches (all, one reference, or one SKU) with their allocations, oldest first.
fn load(
    conn: &Connection,
    reference: Option<&str>,
    sku: Option<&str>,
) -> rusqlite::Result<Vec<BatchRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT reference, sku, quantity, eta, created_at FROM batches
         WHERE (?1 IS NULL OR reference = ?1) AND (?2 IS NULL OR sku = ?2)
         ORDER BY reference",
    )?;
    let rows = stmt.query_map(params![reference, sku], |row| {
        let eta: Option<String> = row.get(3)?;
        Ok(BatchRecord {
            batch: Batch {
                reference: row.get(0)?,
                sku: row.get(1)?,
                purchased: row.get(2)?,
                eta: eta.as_deref().and_then(parse_eta),
                allocations: Vec::new(),
            },
            created_at: row.get(4)?,
        })
    })?;
    let mut records = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut lines = conn.prepare_cached(
        "SELECT orderid, sku, qty FROM allocations WHERE batchref = ?1 ORDER BY seq",
    )?;
    for record in &mut records {
        let rows = lines.query_map([&record.batch.reference], |row| {
            Ok(OrderLine {
                orderid: row.get(0)?,
                sku: row.get(1)?,
                qty: row.get(2)?,
            })
        })?;
        record.batch.allocations = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn line(orderid: &str, qty: i64) -> OrderLine {
        OrderLine {
            orderid: orderid.into(),
            sku: "T-LAMP".into(),
            qty,
        }
    }

    #[test]
    fn allocation_is_stored_and_repeats_are_idempotent() {
        let store = Store::open(None, Clock::new(false)).unwrap();
        store
            .create_batch("t-ship", "T-LAMP", 10, parse_eta("2026-02-01"))
            .unwrap();
        store.create_batch("t-stock", "T-LAMP", 10, None).unwrap();
        let first = store.allocate(&line("o1", 4)).unwrap();
        assert_eq!((first.batchref.as_str(), first.new), ("t-stock", true));
        let again = store.allocate(&line("o1", 4)).unwrap();
        assert_eq!((again.batchref.as_str(), again.new), ("t-stock", false));
        assert_eq!(
            store.batch("t-stock").unwrap().unwrap().batch.available(),
            6
        );
        assert!(matches!(
            store.create_batch("t-stock", "T-LAMP", 1, None),
            Err(BatchError::Exists(_))
        ));
    }

    #[test]
    fn shrinking_deallocates_in_the_database() {
        let store = Store::open(None, Clock::new(false)).unwrap();
        store.create_batch("t-b", "T-LAMP", 10, None).unwrap();
        store.allocate(&line("o1", 6)).unwrap();
        store.allocate(&line("o2", 4)).unwrap();
        let (record, released) = store.change_batch_quantity("t-b", 7).unwrap();
        assert_eq!(released, vec![line("o2", 4)]);
        assert_eq!(record.batch.available(), 1);
        let stored = store.batch("t-b").unwrap().unwrap();
        assert_eq!(stored.batch.allocations, vec![line("o1", 6)]);
        assert!(matches!(
            store.change_batch_quantity("nope", 1),
            Err(BatchError::NotFound(_))
        ));
    }
}
