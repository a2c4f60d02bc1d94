//! Orders: placed from the API (one line) or by checking out a cart (several lines).
//!
//! Placing an order takes the units out of stock; deleting it puts them back. The API's flat
//! `sku`/`quantity` fields describe the first line — a wart kept from when orders had one
//! line, which the `lines` array now completes.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{IdKind, Store};

/// The largest quantity one order line may ask for.
pub(crate) const MAX_QUANTITY: i64 = 1000;

/// An order as the pages and the API show it.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    #[error("the cart is empty")]
    EmptyCart,
    #[error(transparent)]
    Database(#[from] rusqlite::Error),
}

impl Store {
    /// Place an order for `lines` (SKU, quantity), taking the units out of stock.
    pub(crate) fn create_order(
        &self,
        session: Option<&str>,
        lines: &[(String, i64)],
    ) -> Result<Order, OrderError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = self.place(&tx, session, lines)?;
        tx.commit()?;
        load(&conn, &id)?.ok_or(OrderError::Database(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Insert the order inside `tx`; shared by the API and cart checkout.
    pub(super) fn place(
        &self,
        tx: &Transaction<'_>,
        session: Option<&str>,
        lines: &[(String, i64)],
    ) -> Result<String, OrderError> {
        if lines.is_empty() {
            return Err(OrderError::EmptyCart);
        }
        let id = self.next_id(tx, IdKind::Order)?;
        tx.execute(
            "INSERT INTO orders (id, session, status, created_at) VALUES (?1, ?2, 'placed', ?3)",
            params![id, session, self.clock.timestamp()],
        )?;
        for (n, (sku, quantity)) in lines.iter().enumerate() {
            if !(1..=MAX_QUANTITY).contains(quantity) {
                return Err(OrderError::InvalidQuantity(*quantity));
            }
            let found: Option<(String, i64, i64)> = tx
                .query_row(
                    "SELECT name, price_cents, stock FROM products WHERE sku = ?1",
                    [sku],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let Some((name, price_cents, stock)) = found else {
                return Err(OrderError::UnknownSku(sku.clone()));
            };
            if stock < *quantity {
                return Err(OrderError::InsufficientStock {
                    sku: sku.clone(),
                    available: stock,
                });
            }
            tx.execute(
                "UPDATE products SET stock = stock - ?2 WHERE sku = ?1",
                params![sku, quantity],
            )?;
            tx.execute(
                "INSERT INTO order_lines (order_id, line, sku, name, quantity, price_cents)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, n as i64, sku, name, quantity, price_cents],
            )?;
        }
        Ok(id)
    }

    /// Every order, oldest first.
    pub(crate) fn orders(&self) -> rusqlite::Result<Vec<Order>> {
        let conn = self.conn();
        let ids = order_ids(&conn, "SELECT id FROM orders ORDER BY seq")?;
        ids.iter()
            .filter_map(|id| load(&conn, id).transpose())
            .collect()
    }

    /// The `limit` newest orders, newest first (for feeds).
    pub(crate) fn recent_orders(&self, limit: usize) -> rusqlite::Result<Vec<Order>> {
        let conn = self.conn();
        let sql = format!("SELECT id FROM orders ORDER BY seq DESC LIMIT {limit}");
        let ids = order_ids(&conn, &sql)?;
        ids.iter()
            .filter_map(|id| load(&conn, id).transpose())
            .collect()
    }

    /// One order, if it exists.
    pub(crate) fn order(&self, id: &str) -> rusqlite::Result<Option<Order>> {
        load(&self.conn(), id)
    }

    /// Delete an order and put its units back in stock; `false` if there was no such order.
    pub(crate) fn delete_order(&self, id: &str) -> rusqlite::Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE products SET stock = stock + COALESCE(
                 (SELECT SUM(quantity) FROM order_lines
                  WHERE order_lines.order_id = ?1 AND order_lines.sku = products.sku), 0)",
            [id],
        )?;
        let deleted = tx.execute("DELETE FROM orders WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(deleted > 0)
    }
}

fn order_ids(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    rows.collect()
}

fn load(conn: &Connection, id: &str) -> rusqlite::Result<Option<Order>> {
    let head: Option<(String, String)> = conn
        .query_row(
            "SELECT status, created_at FROM orders WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((status, created_at)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT sku, name, quantity, price_cents FROM order_lines WHERE order_id = ?1 ORDER BY line",
    )?;
    let lines = stmt
        .query_map([id], |row| {
            Ok(OrderItem {
                sku: row.get(0)?,
                name: row.get(1)?,
                quantity: row.get(2)?,
                price_cents: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (sku, quantity) = lines
        .first()
        .map(|line| (line.sku.clone(), line.quantity))
        .unwrap_or_default();
    Ok(Some(Order {
        id: id.to_owned(),
        sku,
        quantity,
        status,
        created_at,
        total_cents: lines.iter().map(|l| l.quantity * l.price_cents).sum(),
        currency: "USD".to_owned(),
        lines,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    #[test]
    fn ordering_takes_stock_and_deleting_returns_it() {
        let store = Store::open(None, Clock::new(false)).unwrap();
        let stock = store.product("BLUE-LAMP").unwrap().unwrap().stock;
        let order = store
            .create_order(None, &[("BLUE-LAMP".into(), 2)])
            .unwrap();
        assert_eq!(order.quantity, 2);
        assert_eq!(
            store.product("BLUE-LAMP").unwrap().unwrap().stock,
            stock - 2
        );
        assert!(store.delete_order(&order.id).unwrap());
        assert_eq!(store.product("BLUE-LAMP").unwrap().unwrap().stock, stock);
        assert!(!store.delete_order(&order.id).unwrap());
    }

    #[test]
    fn refusals_leave_nothing_behind() {
        let store = Store::open(None, Clock::new(false)).unwrap();
        let before = store.orders().unwrap().len();
        assert!(matches!(
            store.create_order(None, &[("BLUE-LAMP".into(), 1_000)]),
            Err(OrderError::InsufficientStock { .. })
        ));
        assert!(matches!(
            store.create_order(None, &[("NOPE".into(), 1)]),
            Err(OrderError::UnknownSku(_))
        ));
        assert!(matches!(
            store.create_order(None, &[("BLUE-LAMP".into(), 0)]),
            Err(OrderError::InvalidQuantity(0))
        ));
        assert_eq!(store.orders().unwrap().len(), before);
    }
}
