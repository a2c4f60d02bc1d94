//! `/misc`: the small endpoints a migration moves first — thumbnails, currency conversion,
//! health, RSS/Atom feeds, a streamed CSV export, a large streamed download, a WebSocket
//! "live support chat", and a plain redirect. Errors here are JSON.

mod currency;
mod download;
mod export;
mod feeds;
mod health;
mod thumbnail;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::routing::get;

use crate::Shop;
use crate::images::MAX_IMAGE_BYTES;

/// The `/misc` routes.
pub(crate) fn routes() -> Router<Shop> {
    Router::new()
        .route(
            "/misc/thumbnail",
            get(thumbnail::from_store)
                .post(thumbnail::from_body)
                .layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES)),
        )
        .route("/misc/currency", get(currency::convert))
        .route("/misc/health", get(health::health))
        .route("/misc/feed.rss", get(feeds::rss))
        .route("/misc/feed.atom", get(feeds::atom))
        .route("/misc/export.csv", get(export::csv))
        .route("/misc/download", get(download::download))
        .route("/misc/ws", get(ws::chat))
        .route("/misc/redirect", get(redirect))
}

/// `GET /misc/redirect` → 302 to `/misc/health`.
async fn redirect() -> (StatusCode, [(axum::http::HeaderName, &'static str); 1]) {
    (StatusCode::FOUND, [(LOCATION, "/misc/health")])
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::test_support::{get, router};

    #[tokio::test]
    async fn redirect_is_a_plain_302() {
        let reply = get(&router(), "/misc/redirect").await;
        assert_eq!(reply.status, StatusCode::FOUND);
        assert_eq!(reply.header("location"), "/misc/health");
    }
}
