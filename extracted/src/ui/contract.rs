//! Contract tests: the same requests go to the monolith (`legacy_shim::app`, stable) and to
//! the UI front (stable) whose API is a second stable legacy-shim on a loopback port, and the
//! answers must be equal as a client sees them — status, every response header (cookies,
//! `Location`, `Cache-Control`, ETag, `Vary`, gzip…), and the body bytes.
//!
//! The requests run in order through one shopping journey (carts, checkout, orders), so the
//! two shops' session and order counters move in step and even the ids agree.

use std::net::SocketAddr;

use axum::Router;
use axum::http::Method;
use tokio::sync::oneshot;

use super::{Options, app};
use crate::misc::contract::{Case, both, differences, legacy};

/// A stable legacy-shim serving on a free loopback port: the front's JSON API.
async fn api() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = legacy_shim::Options {
        vary: false,
        ..legacy_shim::Options::default()
    };
    tokio::spawn(legacy_shim::serve(listener, options, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// The stable front over the API at `addr`.
fn front(addr: SocketAddr) -> Router {
    app(&Options {
        api_url: format!("http://{addr}"),
        vary: false,
    })
    .unwrap()
}

fn form(uri: &str, body: &str) -> Case {
    Case::new(Method::POST, uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.as_bytes().to_vec())
}

fn gzip(case: Case) -> Case {
    case.header("accept-encoding", "gzip")
}

/// Runs `cases` in order against both; fails listing every case whose answers differ.
/// Returns the statuses, so a test can check the journey went where it meant to.
async fn assert_same_pages(cases: &[Case]) -> Vec<u16> {
    let (addr, _stop) = api().await;
    let (monolith, front) = (legacy(), front(addr));
    let mut failures = Vec::new();
    let mut statuses = Vec::new();
    for case in cases {
        let pair = both(&monolith, &front, case).await;
        statuses.push(pair.candidate.status.as_u16());
        let diff = differences(&pair);
        if !diff.is_empty() {
            failures.push(format!(
                "{} {}:\n  {}",
                case.method,
                case.uri,
                diff.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    statuses
}

#[tokio::test]
async fn catalog_pages_match() {
    assert_same_pages(&[
        Case::get("/"),
        gzip(Case::get("/")),
        Case::get("/products"),
        gzip(Case::get("/products")),
        Case::new(Method::HEAD, "/products"),
        Case::get("/products").header("if-none-match", "*"),
        Case::get("/products?q=lamp"),
        Case::get("/products?q=%20%20"),
        Case::get("/products?q=%3Cscript%3E"),
        Case::get("/products?q=nothing-like-it"),
        Case::get("/products?q=a&q=b"),
        Case::get("/products/RED-CHAIR"),
        Case::get("/products/STEEL-STOOL"),
        Case::get("/products/COTTON-THROW"),
        Case::get("/products/NO-SUCH"),
        Case::get("/products/a%20b%2Fc"),
        Case::get("/products/RED-CHAIR").header("x-request-id", "trace-me-7"),
        Case::get("/upload"),
        Case::get("/nope"),
        Case::new(Method::DELETE, "/products"),
        Case::new(Method::POST, "/upload"),
    ])
    .await;
}

#[tokio::test]
async fn a_shopping_journey_matches_step_by_step() {
    let first = "session=sess-000001";
    let second = "session=sess-000002";
    let statuses = assert_same_pages(&[
        Case::get("/cart"),
        Case::get("/cart").header("cookie", first),
        form("/cart/add", "sku=BLUE-LAMP&quantity=2").header("cookie", first),
        form("/cart/add", "sku=RED-CHAIR").header("cookie", format!("theme=dark; {first}")),
        gzip(Case::get("/cart").header("cookie", first)),
        form("/cart/add", "sku=GLASS-VASE&quantity=1"),
        Case::get("/cart").header("cookie", second),
        form("/cart/add", "sku=BLUE-LAMP&quantity=lots").header("cookie", first),
        form("/cart/add", "sku=NOPE&quantity=1").header("cookie", first),
        form("/cart/add", "sku=BLUE-LAMP&quantity=0").header("cookie", first),
        form("/cart/add", "quantity=1").header("cookie", first),
        Case::new(Method::POST, "/cart/add").body(b"sku=BLUE-LAMP".to_vec()),
        form("/cart/checkout", "").header("cookie", first),
        Case::get("/orders/ord-000003"),
        Case::get("/orders/ord-000001"),
        Case::get("/orders/ord-999999"),
        form("/cart/checkout", "").header("cookie", first),
        form("/cart/checkout", ""),
        form("/cart/checkout", "").header("cookie", "session=bad value"),
        Case::get("/cart").header("cookie", "session=../../x"),
        Case::get("/cart").header("cookie", first),
        Case::get("/products/BLUE-LAMP"),
    ])
    .await;
    assert_eq!(
        statuses,
        [
            200, 200, 303, 303, 200, 303, 200, 400, 422, 422, 422, 415, 303, 200, 200, 404, 409,
            409, 409, 200, 200, 200
        ]
    );
}

#[tokio::test]
async fn an_unreachable_api_is_a_502_page() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let reply = crate::misc::test_support::call(
        &front(addr),
        axum::http::Request::get("/products")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 502);
    assert!(reply.header("content-type").starts_with("text/html"));
    assert!(String::from_utf8_lossy(&reply.body).contains("502 Bad Gateway"));
}
