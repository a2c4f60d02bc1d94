//! `/api/products`: the catalogue as JSON, and price/name/stock updates.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::Api;
use super::error::{JsonBody, Problem};
use super::store::{Product, ProductUpdate, products};

/// The catalogue answer.
#[derive(Debug, Serialize)]
pub(crate) struct ProductList {
    products: Vec<Product>,
    count: usize,
    as_of: String,
}

/// `GET /api/products` → `{"products": [...], "count": n, "as_of": …}`.
pub(crate) async fn list(State(api): State<Api>) -> Result<Json<ProductList>, Problem> {
    let mut tx = api.store().begin().await?;
    let products = products::all_in(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(ProductList {
        count: products.len(),
        products,
        as_of: api.clock().timestamp(),
    }))
}

/// `GET /api/products/{sku}` → the product, or 404.
pub(crate) async fn show(
    State(api): State<Api>,
    Path(sku): Path<String>,
) -> Result<Json<Product>, Problem> {
    let mut tx = api.store().begin().await?;
    let product = products::one_in(&mut tx, &sku).await?;
    tx.commit().await?;
    product
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no product {sku}")))
}

/// The body of `PUT /api/products/{sku}`: any of these, at least one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProductChange {
    name: Option<String>,
    description: Option<String>,
    price_cents: Option<i64>,
    stock: Option<i64>,
}

/// `PUT /api/products/{sku}` → the updated product; 404 unknown, 422 bad values.
pub(crate) async fn update(
    State(api): State<Api>,
    Path(sku): Path<String>,
    JsonBody(change): JsonBody<ProductChange>,
) -> Result<Json<Product>, Problem> {
    let update = validate(change)?;
    let mut tx = api.store().begin().await?;
    let product = products::update_in(&mut tx, &sku, &update, &api.clock().timestamp()).await?;
    tx.commit().await?;
    product
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no product {sku}")))
}

fn validate(change: ProductChange) -> Result<ProductUpdate, Problem> {
    let invalid = |message: &str| Problem::unprocessable("invalid_field", message);
    if change.name.is_none()
        && change.description.is_none()
        && change.price_cents.is_none()
        && change.stock.is_none()
    {
        return Err(invalid(
            "give at least one of name, description, price_cents, stock",
        ));
    }
    if let Some(name) = &change.name {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(invalid("name must be 1-200 characters"));
        }
    }
    if change.description.as_ref().is_some_and(|d| d.len() > 2000) {
        return Err(invalid("description must be at most 2000 characters"));
    }
    if change
        .price_cents
        .is_some_and(|p| !(0..=100_000_000).contains(&p))
    {
        return Err(invalid("price_cents must be between 0 and 100000000"));
    }
    if change.stock.is_some_and(|s| !(0..=1_000_000).contains(&s)) {
        return Err(invalid("stock must be between 0 and 1000000"));
    }
    Ok(ProductUpdate {
        name: change.name.map(|n| n.trim().to_owned()),
        description: change.description,
        price_cents: change.price_cents,
        stock: change.stock,
    })
}
