//! `GET /misc/ws`: the "live support chat" — a WebSocket that echoes text and binary
//! messages, as the monolith's does. Pings are answered by the WebSocket layer; the close
//! handshake is completed.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};

use super::error::Problem;

/// Upgrade to a WebSocket, or explain (JSON) why the request cannot be upgraded.
pub(crate) async fn chat(upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(echo),
        Err(rejection) => Problem::new(
            rejection.status(),
            "websocket_required",
            rejection.body_text(),
        )
        .into_response(),
    }
}

/// Echo data messages until the peer closes.
async fn echo(mut socket: WebSocket) {
    // Keep reading after a Close so the reply is flushed; the stream ends after the handshake.
    while let Some(Ok(message)) = socket.recv().await {
        if matches!(message, Message::Text(_) | Message::Binary(_))
            && socket.send(message).await.is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::misc::test_support::{get, router};

    #[tokio::test]
    async fn plain_get_is_refused_as_json() {
        let reply = get(&router(), "/misc/ws").await;
        assert!(reply.status.is_client_error());
        assert_ne!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json()["code"], "websocket_required");
    }
}
