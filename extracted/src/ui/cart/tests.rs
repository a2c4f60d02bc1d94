//! The order page after a checkout, against an API that learns of the order a moment late
//! (as the extracted API does: from the order's event).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use tower::ServiceExt;

use crate::ui::{Options, app};

/// How many times the fake API must be asked before it knows `ord-1`.
const LATE_BY: u32 = 3;

/// A JSON API whose cart checkout places `ord-1`, which `GET /api/orders/ord-1` then answers
/// only from the [`LATE_BY`]-th question on; it counts the questions about each order.
async fn late_api() -> (String, Arc<[AtomicU32; 2]>) {
    let asked: Arc<[AtomicU32; 2]> = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    let order = json!({
        "id": "ord-1", "status": "placed", "created_at": "2026-01-01T00:00:00Z",
        "lines": [{"sku": "RED-CHAIR", "name": "Red Chair", "quantity": 1, "price_cents": 4999}],
        "total_cents": 4999, "currency": "USD"
    });
    let placed = order.clone();
    let routes = Router::new()
        .route(
            "/api/carts/{session}/checkout",
            post(move || async move { (StatusCode::CREATED, axum::Json(placed)) }),
        )
        .route(
            "/api/orders/{id}",
            get(
                move |State(asked): State<Arc<[AtomicU32; 2]>>, Path(id): Path<String>| async move {
                    let slot = usize::from(id != "ord-1");
                    let n = asked[slot].fetch_add(1, Ordering::SeqCst) + 1;
                    if id == "ord-1" && n >= LATE_BY {
                        axum::Json(order).into_response()
                    } else {
                        let missing =
                            json!({"error": format!("no order {id}"), "code": "not_found"});
                        (StatusCode::NOT_FOUND, axum::Json(missing)).into_response()
                    }
                },
            ),
        )
        .with_state(asked.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    (url, asked)
}

async fn status(front: &Router, request: Request<Body>) -> StatusCode {
    front.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn the_page_after_a_checkout_waits_for_the_api_and_others_do_not() {
    let (api_url, asked) = late_api().await;
    let front = app(&Options {
        api_url,
        vary: false,
    })
    .unwrap();

    // An order this front did not place: one question, then 404.
    let other = Request::get("/orders/ord-2").body(Body::empty()).unwrap();
    assert_eq!(status(&front, other).await, StatusCode::NOT_FOUND);
    assert_eq!(asked[1].load(Ordering::SeqCst), 1);

    // An order it just placed: the page asks again until the API knows it.
    let checkout = Request::post("/cart/checkout")
        .header("cookie", "session=s-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&front, checkout).await, StatusCode::SEE_OTHER);
    let page = Request::get("/orders/ord-1").body(Body::empty()).unwrap();
    assert_eq!(status(&front, page).await, StatusCode::OK);
    assert_eq!(asked[0].load(Ordering::SeqCst), LATE_BY);
}
