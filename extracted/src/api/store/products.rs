//! The catalogue: products with price, stock and an optional picture.

use serde::Serialize;

use crate::api::storage::{DbError, Row, Tx, Value};

/// A product as the API shows it (fields in the monolith's order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Product {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) description: String,
    /// Price in the currency's minor unit (cents).
    pub(crate) price_cents: i64,
    pub(crate) currency: String,
    pub(crate) stock: i64,
    /// The product picture, served by the monolith at `/images/{image_id}`.
    pub(crate) image_id: Option<String>,
    pub(crate) updated_at: String,
}

/// The fields an update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProductUpdate {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) price_cents: Option<i64>,
    pub(crate) stock: Option<i64>,
}

const SELECT: &str = "SELECT sku, name, description, price_cents, currency, stock, image_id, updated_at FROM products";

fn from_row(row: &Row) -> Result<Product, DbError> {
    Ok(Product {
        sku: row.text(0)?,
        name: row.text(1)?,
        description: row.text(2)?,
        price_cents: row.int(3)?,
        currency: row.text(4)?,
        stock: row.int(5)?,
        image_id: row.opt_text(6)?,
        updated_at: row.text(7)?,
    })
}

/// Every product, by SKU.
pub(crate) async fn all_in(tx: &mut Tx) -> Result<Vec<Product>, DbError> {
    tx.query(&format!("{SELECT} ORDER BY sku"), &[])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// One product, if the SKU exists.
pub(crate) async fn one_in(tx: &mut Tx, sku: &str) -> Result<Option<Product>, DbError> {
    tx.query_opt(&format!("{SELECT} WHERE sku = $1"), &[sku.into()])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Apply `update` and stamp `updated_at`; `None` if the SKU is unknown.
pub(crate) async fn update_in(
    tx: &mut Tx,
    sku: &str,
    update: &ProductUpdate,
    updated_at: &str,
) -> Result<Option<Product>, DbError> {
    let changed = tx
        .execute(
            "UPDATE products SET
                 name = COALESCE($2, name),
                 description = COALESCE($3, description),
                 price_cents = COALESCE($4, price_cents),
                 stock = COALESCE($5, stock),
                 updated_at = $6
             WHERE sku = $1",
            &[
                sku.into(),
                update.name.clone().into(),
                update.description.clone().into(),
                update.price_cents.into(),
                update.stock.into(),
                updated_at.into(),
            ],
        )
        .await?;
    if changed == 0 {
        return Ok(None);
    }
    one_in(tx, sku).await
}

/// Move a product's stock by `delta` (negative: units sold); unknown SKUs are left alone.
pub(crate) async fn add_stock_in(tx: &mut Tx, sku: &str, delta: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE products SET stock = stock + $2 WHERE sku = $1",
        &[Value::from(sku), delta.into()],
    )
    .await?;
    Ok(())
}
