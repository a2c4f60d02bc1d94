//! The knobs that make the monolith misbehave on purpose: a fixed `latency` before every
//! answer, and an `error_rate` share of requests answered 500 (JSON or HTML by path).
//! `/misc/health` is never failed, so the proxy's health checks stay meaningful.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::Shop;
use crate::error::Problem;

/// Sleep for the configured latency, then answer.
pub(crate) async fn delay(State(shop): State<Shop>, request: Request, next: Next) -> Response {
    let latency = shop.opts().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    next.run(request).await
}

/// Answer 500 for a random `error_rate` share of requests.
pub(crate) async fn inject_errors(
    State(shop): State<Shop>,
    request: Request,
    next: Next,
) -> Response {
    let rate = shop.opts().error_rate;
    let path = request.uri().path();
    if rate > 0.0 && path != "/misc/health" && rand::random::<f64>() < rate {
        tracing::debug!(path, "injecting a 500 (error_rate)");
        return Problem::internal().respond_for(path);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use axum::http::StatusCode;

    use crate::test_support::{get, shop_with};
    use crate::{Options, app};

    #[tokio::test]
    async fn error_rate_one_fails_everything_but_health() {
        let app = app(shop_with(Options {
            error_rate: 1.0,
            vary: false,
            ..Options::default()
        }));
        let api = get(&app, "/api/products").await;
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.json()["code"], "internal");
        let page = get(&app, "/products").await;
        assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(page.header("content-type").starts_with("text/html"));
        assert!(page.text().contains("500 Internal Server Error"));
        assert_eq!(get(&app, "/misc/health").await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn error_rate_zero_never_fails() {
        let app = app(shop_with(Options {
            vary: false,
            ..Options::default()
        }));
        for _ in 0..50 {
            assert_eq!(
                get(&app, "/api/products/RED-CHAIR").await.status,
                StatusCode::OK
            );
        }
    }

    #[tokio::test]
    async fn latency_delays_the_answer() {
        let latency = Duration::from_millis(50);
        let app = app(shop_with(Options {
            latency,
            vary: false,
            ..Options::default()
        }));
        let started = Instant::now();
        assert_eq!(get(&app, "/misc/health").await.status, StatusCode::OK);
        assert!(started.elapsed() >= latency);
    }
}
