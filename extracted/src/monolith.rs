//! Reading the monolith's public JSON API, for events that name a fact by its id only.
//!
//! The page checkout (`POST /cart/checkout`, a form answered `303 See Other` to
//! `/orders/{id}`) shows the proxy nothing of the order but its id: the cart's lines live in
//! the monolith's session, not in the request. So its emit rule publishes `shop.order.placed`
//! with only `order_id` (taken from `Location`), and each consumer completes it here from the
//! monolith's `GET /api/orders/{id}` — the answer any client gets, never its database — just
//! as the thumbnail worker fetches an uploaded picture. The monolith stays untouched.
//!
//! Completing happens when the event is first consumed, so the consumer records the order as
//! the monolith had it then. A consumer rebuilding from the stream later (a new consumer name,
//! `strangler events replay`) asks again: an order cancelled meanwhile is gone from the
//! monolith (404), and its event is rejected as before — its `shop.order.cancelled`, later in
//! the stream, would have removed it anyway.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::Value;
use strangler::events::Event;

/// How long one request to the monolith may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The event type completed here.
const ORDER_PLACED: &str = "shop.order.placed";
/// The fields of the monolith's order answer copied into the event.
const ORDER_FIELDS: [&str; 3] = ["created_at", "status", "lines"];

/// The monolith is away or failing (transport error, 5xx, 429): try the event again later.
#[derive(Debug, thiserror::Error)]
#[error("cannot complete event {event} from the monolith: {reason}; it is retried")]
pub struct Unavailable {
    /// The event's id.
    event: String,
    /// What went wrong.
    reason: String,
}

/// The monolith's JSON API at a base URL, e.g. `http://127.0.0.1:8081`.
#[derive(Debug, Clone)]
pub struct Monolith {
    client: reqwest::Client,
    /// The base URL without a trailing `/`.
    base: String,
}

impl Monolith {
    /// A client for the monolith at `base_url` (reached directly, not through the proxy: once
    /// `/api/orders/{id}` is extracted the proxy would send the question to this very service).
    pub fn new(base_url: &str) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// `event`, completed when it names an order by its id only: a `shop.order.placed` with
    /// `order_id` but neither `lines` nor `sku` gains the order's `created_at`, `status` and
    /// `lines` as the monolith answers them. Every other event comes back as it is, and so
    /// does one whose order the monolith does not have (logged; the consumer rejects it).
    pub async fn complete<'a>(&self, event: &'a Event) -> Result<Cow<'a, Event>, Unavailable> {
        let Some(order_id) = thin_order(event) else {
            return Ok(Cow::Borrowed(event));
        };
        let url = format!("{}/api/orders/{order_id}", self.base);
        let unavailable = |reason: String| Unavailable {
            event: event.id.clone(),
            reason,
        };
        let answer = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(format!("GET {url}: {e}")))?;
        let status = answer.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(unavailable(format!("GET {url}: {status}")));
        }
        if !status.is_success() {
            tracing::warn!(event = %event.id, %url, %status, "the monolith has no such order; the event stays as it is");
            return Ok(Cow::Borrowed(event));
        }
        let order: Value = answer
            .json()
            .await
            .map_err(|e| unavailable(format!("GET {url}: the answer is not an order: {e}")))?;
        let mut completed = event.clone();
        let mut data = event.data.value();
        if let Some(fields) = data.as_object_mut() {
            for field in ORDER_FIELDS {
                if let Some(value) = order.get(field) {
                    fields.insert(field.to_owned(), value.clone());
                }
            }
        }
        completed.data = data.into();
        Ok(Cow::Owned(completed))
    }
}

/// The order id of a `shop.order.placed` that carries nothing else to build the order from;
/// `None` for other events, complete ones, and ids that are not plain names.
fn thin_order(event: &Event) -> Option<String> {
    if event.kind != ORDER_PLACED {
        return None;
    }
    let data = event.data.value();
    let data = data.as_object()?;
    if data.contains_key("lines") || data.contains_key("sku") {
        return None;
    }
    let id = data.get("order_id")?.as_str()?;
    let plain = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// legacy-shim on a loopback port, serving until the test's runtime ends.
    async fn monolith() -> (Monolith, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let options = legacy_shim::Options {
            vary: false,
            ..legacy_shim::Options::default()
        };
        tokio::spawn(legacy_shim::serve(
            listener,
            options,
            std::future::pending(),
        ));
        (Monolith::new(&url).unwrap(), url)
    }

    fn placed(data: Value) -> Event {
        Event::new(ORDER_PLACED, Some("page-cart"), "c1", data)
    }

    #[tokio::test]
    async fn a_thin_order_gets_the_monolith_lines_and_others_stay() {
        let (monolith, url) = monolith().await;
        let order: Value = reqwest::Client::new()
            .post(format!("{url}/api/orders"))
            .json(&json!({"sku": "RED-CHAIR", "quantity": 2}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = order["id"].as_str().unwrap();

        let thin = placed(json!({ "order_id": id }));
        let completed = monolith.complete(&thin).await.unwrap().into_owned();
        assert_eq!(
            completed.id, thin.id,
            "the same event, so idempotency holds"
        );
        assert_eq!(completed.data.value()["lines"], order["lines"]);
        assert_eq!(completed.data.value()["created_at"], order["created_at"]);
        assert_eq!(completed.data.value()["status"], order["status"]);

        let full = placed(json!({ "order_id": id, "lines": [] }));
        assert!(matches!(
            monolith.complete(&full).await.unwrap(),
            Cow::Borrowed(_)
        ));
        let gone = placed(json!({ "order_id": "ord-999999" }));
        assert!(matches!(
            monolith.complete(&gone).await.unwrap(),
            Cow::Borrowed(_)
        ));
        let odd = placed(json!({ "order_id": "../admin" }));
        assert!(matches!(
            monolith.complete(&odd).await.unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[tokio::test]
    async fn a_monolith_that_is_away_is_retried_later() {
        let away = Monolith::new("http://127.0.0.1:1").unwrap();
        let thin = placed(json!({ "order_id": "ord-000001" }));
        let err = away.complete(&thin).await.unwrap_err();
        assert!(err.to_string().contains("it is retried"), "{err}");
    }
}
