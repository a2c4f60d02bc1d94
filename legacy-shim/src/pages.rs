//! Server-rendered HTML: the catalog, the cart and checkout, order pages and the upload form.
//!
//! Pages are plain strings built with `layout::page`; every user- or database-supplied value is
//! escaped there or with `layout::escape`. Failures render as HTML error pages (`PageProblem`).

mod cart;
mod catalog;
pub(crate) mod layout;
mod upload;

use axum::Router;
use axum::routing::{get, post};

use crate::Shop;

/// The page routes: `/`, `/products`, `/products/{sku}`, `/cart`, `/cart/add`,
/// `/cart/checkout`, `/orders/{id}`, `/upload`.
pub(crate) fn routes() -> Router<Shop> {
    Router::new()
        .route("/", get(catalog::home))
        .route("/products", get(catalog::products))
        .route("/products/{sku}", get(catalog::product))
        .route("/cart", get(cart::show))
        .route("/cart/add", post(cart::add))
        .route("/cart/checkout", post(cart::checkout))
        .route("/orders/{id}", get(cart::order))
        .route("/upload", get(upload::form))
}
