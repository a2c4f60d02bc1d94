//! The catalog pages: home, the product list (with search) and one product — from
//! `GET /api/products` and `GET /api/products/{sku}`.

use std::fmt::Write;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::backend::Product;
use super::layout::{escape, money, page};
use super::problem::PageProblem;
use super::{Front, RequestId};

/// `GET /` — a welcome and the products that have pictures.
pub(crate) async fn home(
    State(front): State<Front>,
    RequestId(id): RequestId,
) -> Result<Html<String>, PageProblem> {
    let products = front.backend().products(&id).await?;
    let mut body = String::from(
        "<h1>Welcome to the Legacy Shop</h1>\n\
         <p>Furniture and homewares since 2009. Free delivery on orders over $100.</p>\n\
         <h2>Featured</h2>\n<ul class=\"featured\">\n",
    );
    for product in products.iter().filter(|p| p.image_id.is_some()) {
        let _ = writeln!(
            body,
            "<li><a href=\"/products/{sku}\">{picture}{name}</a> <span class=\"price\">{price}</span></li>",
            sku = escape(&product.sku),
            picture = picture(product, 48),
            name = escape(&product.name),
            price = money(product.price_cents, &product.currency),
        );
    }
    let _ = write!(
        body,
        "</ul>\n<p><a href=\"/products\">See all {} products</a></p>\n",
        products.len()
    );
    Ok(Html(page("Home", &body, Some(&front.clock().timestamp()))))
}

/// The query string of `GET /products`.
#[derive(Debug, Deserialize)]
pub(crate) struct Search {
    /// Case-insensitive text to look for in names and SKUs.
    q: Option<String>,
}

/// `GET /products[?q=…]` — every product (or the matches) with an add-to-cart button.
pub(crate) async fn products(
    State(front): State<Front>,
    RequestId(id): RequestId,
    search: Result<Query<Search>, QueryRejection>,
) -> Result<Html<String>, PageProblem> {
    let query = search
        .ok()
        .and_then(|Query(search)| search.q)
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    let needle = query.as_deref().map(str::to_lowercase);
    let products: Vec<Product> = front
        .backend()
        .products(&id)
        .await?
        .into_iter()
        .filter(|p| match &needle {
            Some(n) => p.name.to_lowercase().contains(n) || p.sku.to_lowercase().contains(n),
            None => true,
        })
        .collect();

    let mut body = match &query {
        Some(q) => format!("<h1>Products matching “{}”</h1>\n", escape(q)),
        None => "<h1>All products</h1>\n".to_owned(),
    };
    if products.is_empty() {
        body.push_str("<p class=\"notice\">No products match your search.</p>\n");
    } else {
        body.push_str(
            "<table class=\"products\">\n<thead><tr><th>Product</th><th>SKU</th><th>Price</th>\
             <th>Stock</th><th></th></tr></thead>\n<tbody>\n",
        );
        for p in &products {
            let _ = writeln!(
                body,
                "<tr><td><a href=\"/products/{sku}\">{name}</a></td><td><code>{sku}</code></td>\
                 <td class=\"price\">{price}</td><td>{stock}</td><td>{form}</td></tr>",
                sku = escape(&p.sku),
                name = escape(&p.name),
                price = money(p.price_cents, &p.currency),
                stock = stock_label(p.stock),
                form = add_form(p, false),
            );
        }
        body.push_str("</tbody>\n</table>\n");
    }
    Ok(Html(page(
        "Products",
        &body,
        Some(&front.clock().timestamp()),
    )))
}

/// `GET /products/{sku}` — one product; a 404 page for an unknown SKU.
pub(crate) async fn product(
    State(front): State<Front>,
    RequestId(id): RequestId,
    Path(sku): Path<String>,
) -> Result<Html<String>, PageProblem> {
    let p = front
        .backend()
        .product(&sku, &id)
        .await
        .map_err(|e| PageProblem::missing(e, format!("We have no product {sku}.")))?;
    let body = format!(
        "<nav class=\"crumbs\"><a href=\"/products\">Products</a> &rsaquo; {name}</nav>\n\
         <article class=\"product\" data-sku=\"{sku}\">\n<h1>{name}</h1>\n{picture}\n\
         <p class=\"description\">{description}</p>\n\
         <p><span class=\"price\">{price}</span> &middot; {stock}</p>\n{form}\n</article>\n",
        sku = escape(&p.sku),
        name = escape(&p.name),
        picture = picture(&p, 240),
        description = escape(&p.description),
        price = money(p.price_cents, &p.currency),
        stock = stock_label(p.stock),
        form = add_form(&p, true),
    );
    Ok(Html(page(&p.name, &body, Some(&front.clock().timestamp()))))
}

fn stock_label(stock: i64) -> String {
    if stock > 0 {
        format!("{stock} in stock")
    } else {
        "<span class=\"stock-out\">out of stock</span>".to_owned()
    }
}

fn picture(p: &Product, size: u32) -> String {
    match &p.image_id {
        Some(id) => format!(
            "<img src=\"/images/{id}\" alt=\"{name}\" width=\"{size}\"> ",
            id = escape(id),
            name = escape(&p.name),
        ),
        None => String::new(),
    }
}

/// The add-to-cart form; the product page lets the shopper pick a quantity.
fn add_form(p: &Product, with_quantity: bool) -> String {
    let quantity = if with_quantity {
        "<label>Quantity <input type=\"number\" name=\"quantity\" value=\"1\" min=\"1\" max=\"1000\"></label>"
    } else {
        "<input type=\"hidden\" name=\"quantity\" value=\"1\">"
    };
    let disabled = if p.stock > 0 { "" } else { " disabled" };
    format!(
        "<form class=\"inline\" action=\"/cart/add\" method=\"post\">\
         <input type=\"hidden\" name=\"sku\" value=\"{sku}\">{quantity}\
         <button type=\"submit\"{disabled}>Add to cart</button></form>",
        sku = escape(&p.sku),
    )
}
