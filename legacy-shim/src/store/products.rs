//! The catalog: products with price, stock and an optional picture.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::Store;

/// A product as the pages and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Product {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) description: String,
    /// Price in the currency's minor unit (cents).
    pub(crate) price_cents: i64,
    pub(crate) currency: String,
    pub(crate) stock: i64,
    /// The product picture, served at `/images/{image_id}`.
    pub(crate) image_id: Option<String>,
    pub(crate) updated_at: String,
}

/// The fields `PUT /api/products/{sku}` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProductUpdate {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) price_cents: Option<i64>,
    pub(crate) stock: Option<i64>,
}

const COLUMNS: &str = "sku, name, description, price_cents, currency, stock, image_id, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        sku: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        price_cents: row.get(3)?,
        currency: row.get(4)?,
        stock: row.get(5)?,
        image_id: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

impl Store {
    /// Every product, by SKU.
    pub(crate) fn products(&self) -> rusqlite::Result<Vec<Product>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM products ORDER BY sku"))?;
        let rows = stmt.query_map([], from_row)?;
        rows.collect()
    }

    /// One product, if the SKU exists.
    pub(crate) fn product(&self, sku: &str) -> rusqlite::Result<Option<Product>> {
        let conn = self.conn();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM products WHERE sku = ?1"),
            [sku],
            from_row,
        )
        .optional()
    }

    /// Apply `update` to a product and stamp `updated_at`; `None` if the SKU is unknown.
    pub(crate) fn update_product(
        &self,
        sku: &str,
        update: &ProductUpdate,
    ) -> rusqlite::Result<Option<Product>> {
        let now = self.clock.timestamp();
        let changed = self.conn().execute(
            "UPDATE products SET
                 name = COALESCE(?2, name),
                 description = COALESCE(?3, description),
                 price_cents = COALESCE(?4, price_cents),
                 stock = COALESCE(?5, stock),
                 updated_at = ?6
             WHERE sku = ?1",
            params![
                sku,
                update.name,
                update.description,
                update.price_cents,
                update.stock,
                now
            ],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        self.product(sku)
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Clock;
    use crate::store::{ProductUpdate, Store};

    #[test]
    fn update_changes_only_given_fields() {
        let store = Store::open(None, Clock::new(false)).unwrap();
        let before = store.product("RED-CHAIR").unwrap().unwrap();
        let update = ProductUpdate {
            price_cents: Some(1),
            ..ProductUpdate::default()
        };
        let after = store.update_product("RED-CHAIR", &update).unwrap().unwrap();
        assert_eq!(after.price_cents, 1);
        assert_eq!(after.name, before.name);
        assert_eq!(store.update_product("NOPE", &update).unwrap(), None);
    }
}
