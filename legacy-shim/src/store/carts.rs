//! Shopping carts, keyed by the `session` cookie, and checkout into an order.

use rusqlite::{OptionalExtension, params};

use super::orders::MAX_QUANTITY;
use super::{IdKind, Order, OrderError, Product, Store};

/// One line of a cart: the product as it is now, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CartLine {
    pub(crate) product: Product,
    pub(crate) quantity: i64,
}

impl Store {
    /// Start a new cart and return its session id (the cookie value).
    pub(crate) fn new_session(&self) -> rusqlite::Result<String> {
        let conn = self.conn();
        let session = self.next_id(&conn, IdKind::Session)?;
        conn.execute(
            "INSERT OR IGNORE INTO carts (session, created_at) VALUES (?1, ?2)",
            params![session, self.clock.timestamp()],
        )?;
        Ok(session)
    }

    /// The lines of a cart, in the order they were first added (empty for unknown sessions).
    pub(crate) fn cart(&self, session: &str) -> rusqlite::Result<Vec<CartLine>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT p.sku, p.name, p.description, p.price_cents, p.currency, p.stock, p.image_id,
                    p.updated_at, c.quantity
             FROM cart_items c JOIN products p ON p.sku = c.sku
             WHERE c.session = ?1 ORDER BY c.added",
        )?;
        let rows = stmt.query_map([session], |row| {
            Ok(CartLine {
                product: Product {
                    sku: row.get(0)?,
                    name: row.get(1)?,
                    description: row.get(2)?,
                    price_cents: row.get(3)?,
                    currency: row.get(4)?,
                    stock: row.get(5)?,
                    image_id: row.get(6)?,
                    updated_at: row.get(7)?,
                },
                quantity: row.get(8)?,
            })
        })?;
        rows.collect()
    }

    /// Add `quantity` of `sku` to a cart (created if the session is new to us).
    pub(crate) fn add_to_cart(
        &self,
        session: &str,
        sku: &str,
        quantity: i64,
    ) -> Result<(), OrderError> {
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(OrderError::InvalidQuantity(quantity));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let known: Option<i64> = tx
            .query_row("SELECT 1 FROM products WHERE sku = ?1", [sku], |row| {
                row.get(0)
            })
            .optional()?;
        if known.is_none() {
            return Err(OrderError::UnknownSku(sku.to_owned()));
        }
        tx.execute(
            "INSERT OR IGNORE INTO carts (session, created_at) VALUES (?1, ?2)",
            params![session, self.clock.timestamp()],
        )?;
        tx.execute(
            "INSERT INTO cart_items (session, sku, quantity, added)
             VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(added), 0) + 1 FROM cart_items WHERE session = ?1))
             ON CONFLICT (session, sku) DO UPDATE SET quantity = MIN(quantity + ?3, ?4)",
            params![session, sku, quantity, MAX_QUANTITY],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Turn a cart into an order and empty it.
    pub(crate) fn checkout(&self, session: &str) -> Result<Order, OrderError> {
        let id = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let lines = {
                let mut stmt = tx.prepare_cached(
                    "SELECT sku, quantity FROM cart_items WHERE session = ?1 ORDER BY added",
                )?;
                let rows = stmt.query_map([session], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect::<rusqlite::Result<Vec<(String, i64)>>>()?
            };
            let id = self.place(&tx, Some(session), &lines)?;
            tx.execute("DELETE FROM cart_items WHERE session = ?1", [session])?;
            tx.commit()?;
            id
        };
        self.order(&id)?
            .ok_or(OrderError::Database(rusqlite::Error::QueryReturnedNoRows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    #[test]
    fn cart_fills_then_checks_out_empty() {
        let store = Store::open(None, Clock::new(false)).unwrap();
        let session = store.new_session().unwrap();
        store.add_to_cart(&session, "BLUE-LAMP", 1).unwrap();
        store.add_to_cart(&session, "RED-CHAIR", 2).unwrap();
        store.add_to_cart(&session, "BLUE-LAMP", 1).unwrap();
        let cart = store.cart(&session).unwrap();
        assert_eq!(cart.len(), 2);
        assert_eq!(
            (cart[0].product.sku.as_str(), cart[0].quantity),
            ("BLUE-LAMP", 2)
        );
        let order = store.checkout(&session).unwrap();
        assert_eq!(order.lines.len(), 2);
        assert!(store.cart(&session).unwrap().is_empty());
        assert!(matches!(
            store.checkout(&session),
            Err(OrderError::EmptyCart)
        ));
        assert!(matches!(
            store.add_to_cart(&session, "NOPE", 1),
            Err(OrderError::UnknownSku(_))
        ));
    }
}
