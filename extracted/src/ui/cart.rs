//! The cart (identified by the `session` cookie), checkout, and order pages.
//!
//! The front keeps no cart of its own: the cookie's value is the API's cart id. A visitor
//! without a valid `session` cookie gets a new cart from `POST /api/carts` the first time
//! they see or change their cart, and its id as the cookie; after that the cookie is never
//! set again — when and how the monolith's pages do it, so the sequence of session ids, the
//! cookies and the pages are the same.

use std::fmt::Write;
use std::time::Instant;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::backend::Cart;
use super::layout::{escape, money, page};
use super::problem::PageProblem;
use super::{Front, RequestId, recent};

/// The visitor's cart, and whether it was just made (so the cookie must be set).
struct Session {
    id: String,
    fresh: bool,
}

/// The `session` cookie's value, if present and well-formed.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "session")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| {
            (1..=64).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The visitor's session, and the new cart when one had to be made.
async fn session(
    front: &Front,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<(Session, Option<Cart>), PageProblem> {
    match session_cookie(headers) {
        Some(id) => Ok((Session { id, fresh: false }, None)),
        None => {
            let cart = front.backend().new_cart(request_id).await?;
            let session = Session {
                id: cart.session.clone(),
                fresh: true,
            };
            Ok((session, Some(cart)))
        }
    }
}

/// Attach `Set-Cookie` for a fresh session.
fn with_cookie(mut response: Response, session: &Session) -> Response {
    if session.fresh {
        let cookie = format!("session={}; Path=/; HttpOnly; SameSite=Lax", session.id);
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(SET_COOKIE, value);
        }
    }
    response
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response()
}

/// `GET /cart` — the cart's lines, total and checkout button.
pub(crate) async fn show(
    State(front): State<Front>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
) -> Result<Response, PageProblem> {
    let (session, new_cart) = session(&front, &headers, &request_id).await?;
    let cart = match new_cart {
        Some(cart) => cart,
        None => front.backend().cart(&session.id, &request_id).await?,
    };
    let mut body = String::from("<h1>Your cart</h1>\n");
    if cart.lines.is_empty() {
        body.push_str(
            "<p class=\"notice\">Your cart is empty. <a href=\"/products\">Browse products</a>.</p>\n",
        );
    } else {
        body.push_str(
            "<table class=\"cart\">\n<thead><tr><th>Product</th><th>Quantity</th><th>Price</th>\
             <th>Subtotal</th></tr></thead>\n<tbody>\n",
        );
        let mut total = 0;
        for line in &cart.lines {
            let p = &line.product;
            let subtotal = p.price_cents * line.quantity;
            total += subtotal;
            let _ = writeln!(
                body,
                "<tr><td><a href=\"/products/{sku}\">{name}</a></td><td>{quantity}</td>\
                 <td>{price}</td><td class=\"price\">{subtotal}</td></tr>",
                sku = escape(&p.sku),
                name = escape(&p.name),
                quantity = line.quantity,
                price = money(p.price_cents, &p.currency),
                subtotal = money(subtotal, &p.currency),
            );
        }
        let _ = write!(
            body,
            "</tbody>\n<tfoot><tr><th colspan=\"3\">Total</th><th class=\"price\">{}</th></tr></tfoot>\n\
             </table>\n<form action=\"/cart/checkout\" method=\"post\">\
             <button type=\"submit\">Place order</button></form>\n",
            money(total, "USD"),
        );
    }
    let mut response = Html(page("Cart", &body, Some(&front.clock().timestamp()))).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok(with_cookie(response, &session))
}

/// The form posted to `/cart/add`.
#[derive(Debug, Deserialize)]
pub(crate) struct AddToCart {
    sku: String,
    /// Text, so a bad number gets our error page rather than a bare rejection.
    quantity: Option<String>,
}

/// `POST /cart/add` (form: `sku`, `quantity`) → 303 to `/cart`.
pub(crate) async fn add(
    State(front): State<Front>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    form: Result<Form<AddToCart>, FormRejection>,
) -> Result<Response, PageProblem> {
    let Form(form) =
        form.map_err(|rejection| PageProblem::new(rejection.status(), rejection.body_text()))?;
    let quantity = match form.quantity.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(text) => text.parse::<i64>().map_err(|_| {
            PageProblem::new(
                StatusCode::BAD_REQUEST,
                format!("“{text}” is not a quantity."),
            )
        })?,
    };
    let (session, _) = session(&front, &headers, &request_id).await?;
    front
        .backend()
        .add_to_cart(&session.id, &form.sku, quantity, &request_id)
        .await?;
    Ok(with_cookie(see_other("/cart"), &session))
}

/// `POST /cart/checkout` → the cart becomes an order → 303 to `/orders/{id}`.
pub(crate) async fn checkout(
    State(front): State<Front>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
) -> Result<Response, PageProblem> {
    let Some(session) = session_cookie(&headers) else {
        return Err(PageProblem::new(
            StatusCode::CONFLICT,
            "Your cart is empty.",
        ));
    };
    let order = front.backend().checkout(&session, &request_id).await?;
    front.recent().placed(&order.id);
    Ok(see_other(&format!("/orders/{}", order.id)))
}

/// `GET /orders/{id}` — an order's lines and total. For an order placed here a moment ago
/// the API may not know yet, it waits a little for the API to learn of it (`recent`).
pub(crate) async fn order(
    State(front): State<Front>,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Html<String>, PageProblem> {
    let give_up = Instant::now() + recent::WAIT;
    let order = loop {
        match front.backend().order(&id, &request_id).await {
            Err(e)
                if e.is_not_found() && front.recent().contains(&id) && Instant::now() < give_up =>
            {
                tokio::time::sleep(recent::POLL).await;
            }
            answer => break answer,
        }
    }
    .map_err(|e| PageProblem::missing(e, format!("We have no order {id}.")))?;
    let mut body = format!(
        "<h1>Order {id}</h1>\n<p>Status: <strong>{status}</strong> &middot; placed {created}</p>\n\
         <table class=\"order\">\n<thead><tr><th>Product</th><th>Quantity</th><th>Price</th></tr></thead>\n<tbody>\n",
        id = escape(&order.id),
        status = escape(&order.status),
        created = escape(&order.created_at),
    );
    for line in &order.lines {
        let _ = writeln!(
            body,
            "<tr><td><a href=\"/products/{sku}\">{name}</a></td><td>{quantity}</td><td>{price}</td></tr>",
            sku = escape(&line.sku),
            name = escape(&line.name),
            quantity = line.quantity,
            price = money(line.price_cents, &order.currency),
        );
    }
    let _ = write!(
        body,
        "</tbody>\n<tfoot><tr><th colspan=\"2\">Total</th><th class=\"price\">{}</th></tr></tfoot>\n</table>\n\
         <p><a href=\"/products\">Continue shopping</a></p>\n",
        money(order.total_cents, &order.currency),
    );
    Ok(Html(page(
        &format!("Order {}", order.id),
        &body,
        Some(&front.clock().timestamp()),
    )))
}

#[cfg(test)]
mod tests;
