//! The cart (identified by the `session` cookie), checkout, and order pages.
//!
//! A visitor without a valid `session` cookie gets one the first time they see or change
//! their cart; after that the cookie is never set again.

use std::fmt::Write;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::layout::{escape, money, page};
use crate::Shop;
use crate::error::{PageProblem, Problem};

/// The visitor's cart id, and whether it was just made (so the cookie must be set).
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

fn session(shop: &Shop, headers: &HeaderMap) -> Result<Session, rusqlite::Error> {
    match session_cookie(headers) {
        Some(id) => Ok(Session { id, fresh: false }),
        None => Ok(Session {
            id: shop.store().new_session()?,
            fresh: true,
        }),
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
    State(shop): State<Shop>,
    headers: HeaderMap,
) -> Result<Response, PageProblem> {
    let session = session(&shop, &headers)?;
    let lines = shop.store().cart(&session.id)?;
    let mut body = String::from("<h1>Your cart</h1>\n");
    if lines.is_empty() {
        body.push_str(
            "<p class=\"notice\">Your cart is empty. <a href=\"/products\">Browse products</a>.</p>\n",
        );
    } else {
        body.push_str(
            "<table class=\"cart\">\n<thead><tr><th>Product</th><th>Quantity</th><th>Price</th>\
             <th>Subtotal</th></tr></thead>\n<tbody>\n",
        );
        let mut total = 0;
        for line in &lines {
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
    let mut response = Html(page("Cart", &body, Some(&shop.clock().timestamp()))).into_response();
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
    State(shop): State<Shop>,
    headers: HeaderMap,
    form: Result<Form<AddToCart>, FormRejection>,
) -> Result<Response, PageProblem> {
    let Form(form) = form
        .map_err(|rejection| Problem::new(rejection.status(), "bad_form", rejection.body_text()))?;
    let quantity = match form.quantity.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(text) => text.parse::<i64>().map_err(|_| {
            Problem::bad_request("bad_quantity", format!("“{text}” is not a quantity."))
        })?,
    };
    let session = session(&shop, &headers)?;
    shop.store().add_to_cart(&session.id, &form.sku, quantity)?;
    Ok(with_cookie(see_other("/cart"), &session))
}

/// `POST /cart/checkout` → the cart becomes an order → 303 to `/orders/{id}`.
pub(crate) async fn checkout(
    State(shop): State<Shop>,
    headers: HeaderMap,
) -> Result<Response, PageProblem> {
    let Some(session) = session_cookie(&headers) else {
        return Err(Problem::conflict("empty_cart", "Your cart is empty.").into());
    };
    let order = shop.store().checkout(&session)?;
    Ok(see_other(&format!("/orders/{}", order.id)))
}

/// `GET /orders/{id}` — an order's lines and total.
pub(crate) async fn order(
    State(shop): State<Shop>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageProblem> {
    let Some(order) = shop.store().order(&id)? else {
        return Err(Problem::not_found(format!("We have no order {id}.")).into());
    };
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
        Some(&shop.clock().timestamp()),
    )))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::test_support::{call, get, router};

    fn post_form(uri: &str, form: &str, cookie: Option<&str>) -> Request<Body> {
        let mut req =
            Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.body(Body::from(form.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn the_session_cookie_is_set_once() {
        let app = router();
        let first = get(&app, "/cart").await;
        assert_eq!(first.status, StatusCode::OK);
        let cookie = first.header("set-cookie");
        assert_eq!(
            cookie,
            "session=sess-000001; Path=/; HttpOnly; SameSite=Lax"
        );
        let again = call(
            &app,
            Request::get("/cart")
                .header("cookie", "theme=dark; session=sess-000001")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(again.status, StatusCode::OK);
        assert!(again.headers.get("set-cookie").is_none());
    }

    #[tokio::test]
    async fn add_then_checkout_redirects_to_the_order() {
        let app = router();
        let added = call(
            &app,
            post_form("/cart/add", "sku=BLUE-LAMP&quantity=2", None),
        )
        .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER);
        assert_eq!(added.header("location"), "/cart");
        let cookie = added
            .header("set-cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned();

        let more = call(&app, post_form("/cart/add", "sku=RED-CHAIR", Some(&cookie))).await;
        assert_eq!(more.status, StatusCode::SEE_OTHER);
        assert!(more.headers.get("set-cookie").is_none());

        let cart = call(
            &app,
            Request::get("/cart")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(cart.text().contains("Blue Lamp") && cart.text().contains("$108.99"));

        let done = call(&app, post_form("/cart/checkout", "", Some(&cookie))).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        let location = done.header("location").to_owned();
        assert_eq!(location, "/orders/ord-000003");
        let order = get(&app, &location).await;
        assert_eq!(order.status, StatusCode::OK);
        assert!(order.text().contains("Order ord-000003") && order.text().contains("Red Chair"));

        let empty = call(&app, post_form("/cart/checkout", "", Some(&cookie))).await;
        assert_eq!(empty.status, StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn bad_forms_get_error_pages() {
        let app = router();
        let bad = call(
            &app,
            post_form("/cart/add", "sku=BLUE-LAMP&quantity=lots", None),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.text().contains("&ldquo;lots&rdquo;") || bad.text().contains("“lots”"));
        let unknown = call(&app, post_form("/cart/add", "sku=NOPE", None)).await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        let missing = call(&app, post_form("/cart/add", "quantity=1", None)).await;
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        let no_order = get(&app, "/orders/ord-999999").await;
        assert_eq!(no_order.status, StatusCode::NOT_FOUND);
    }
}
