//! The JSON API, as the UI front sees it: every piece of data the pages show comes from here,
//! over HTTP (`--api-url`; in the demo, the proxy, so `/api` follows its routes' modes).
//!
//! Calls: `GET /api/products`, `GET /api/products/{sku}`, `GET /api/orders/{id}`,
//! `POST /api/carts`, `GET /api/carts/{session}`, `POST /api/carts/{session}`,
//! `POST /api/carts/{session}/checkout`. Path segments are percent-encoded; the page's
//! `X-Request-Id` goes along so one id follows a page through the API.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How long one API call may take before the page gives up with a 502.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A product as the API shows it (the fields the pages use).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Product {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) price_cents: i64,
    pub(crate) currency: String,
    pub(crate) stock: i64,
    pub(crate) image_id: Option<String>,
}

/// `GET /api/products`.
#[derive(Debug, Deserialize)]
struct ProductList {
    products: Vec<Product>,
}

/// An order as the API shows it.
#[derive(Debug, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) created_at: String,
    pub(crate) lines: Vec<OrderLine>,
    pub(crate) total_cents: i64,
    pub(crate) currency: String,
}

/// One line of an order, at the price it was bought.
#[derive(Debug, Deserialize)]
pub(crate) struct OrderLine {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: i64,
    pub(crate) price_cents: i64,
}

/// A cart as the API shows it.
#[derive(Debug, Deserialize)]
pub(crate) struct Cart {
    /// The session id (the cookie value).
    pub(crate) session: String,
    pub(crate) lines: Vec<CartLine>,
}

/// One cart line: the product as it is now, and how many.
#[derive(Debug, Deserialize)]
pub(crate) struct CartLine {
    pub(crate) product: Product,
    pub(crate) quantity: i64,
}

/// Why an API call gave no data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackendError {
    /// The API answered with an error (`{"error", "code"}`): the page shows its status and
    /// message, as the monolith's page does for the same failure.
    #[error("the API answered {status}: {message}")]
    Answered {
        /// The API's status.
        status: StatusCode,
        /// Its `error` text.
        message: String,
    },
    /// No usable answer: unreachable, timed out, or not the JSON expected.
    #[error("the API at {url} failed: {detail}")]
    Unavailable {
        /// What was called.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

impl BackendError {
    /// Whether the API said 404 (the page words its own "we have no …" message then).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, BackendError::Answered { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// The error shape of the API.
#[derive(Debug, Deserialize)]
struct ApiProblem {
    error: String,
}

/// An HTTP client for the JSON API at one base URL. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    client: reqwest::Client,
    /// The API's base URL, e.g. `http://127.0.0.1:8080/`.
    base: Url,
}

impl Backend {
    /// A client for the API at `base` (scheme, host, port and an optional path prefix).
    pub(crate) fn new(base: &str) -> Result<Backend, String> {
        let mut base = Url::parse(base).map_err(|e| format!("API URL {base:?}: {e}"))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(format!("API URL {base} must be http:// or https://"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Backend { client, base })
    }

    /// Every product, in the API's order (by SKU).
    pub(crate) async fn products(&self, request_id: &str) -> Result<Vec<Product>, BackendError> {
        let list: ProductList = self
            .call(Method::GET, &["api", "products"], None, request_id)
            .await?;
        Ok(list.products)
    }

    /// One product.
    pub(crate) async fn product(
        &self,
        sku: &str,
        request_id: &str,
    ) -> Result<Product, BackendError> {
        self.call(Method::GET, &["api", "products", sku], None, request_id)
            .await
    }

    /// One order.
    pub(crate) async fn order(&self, id: &str, request_id: &str) -> Result<Order, BackendError> {
        self.call(Method::GET, &["api", "orders", id], None, request_id)
            .await
    }

    /// A new, empty cart with a fresh session id.
    pub(crate) async fn new_cart(&self, request_id: &str) -> Result<Cart, BackendError> {
        self.call(Method::POST, &["api", "carts"], None, request_id)
            .await
    }

    /// The cart of `session`.
    pub(crate) async fn cart(&self, session: &str, request_id: &str) -> Result<Cart, BackendError> {
        self.call(Method::GET, &["api", "carts", session], None, request_id)
            .await
    }

    /// Adds `quantity` of `sku` to the cart of `session`.
    pub(crate) async fn add_to_cart(
        &self,
        session: &str,
        sku: &str,
        quantity: i64,
        request_id: &str,
    ) -> Result<Cart, BackendError> {
        let body = serde_json::json!({ "sku": sku, "quantity": quantity });
        self.call(
            Method::POST,
            &["api", "carts", session],
            Some(body),
            request_id,
        )
        .await
    }

    /// Turns the cart of `session` into an order.
    pub(crate) async fn checkout(
        &self,
        session: &str,
        request_id: &str,
    ) -> Result<Order, BackendError> {
        self.call(
            Method::POST,
            &["api", "carts", session, "checkout"],
            None,
            request_id,
        )
        .await
    }

    /// One call: the path from percent-encoded `segments`, an optional JSON body; a 2xx
    /// answer is read as `T`, any other as the API's `{"error"}`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
        request_id: &str,
    ) -> Result<T, BackendError> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        let unavailable = |detail: String| BackendError::Unavailable {
            url: url.to_string(),
            detail,
        };
        let mut request = self
            .client
            .request(method, url.clone())
            .header("x-request-id", request_id);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| unavailable(format!("an unexpected answer ({status}): {e}")));
        }
        match serde_json::from_slice::<ApiProblem>(&bytes) {
            Ok(problem) => Err(BackendError::Answered {
                status,
                message: problem.error,
            }),
            Err(_) => Err(unavailable(format!("{status} without an API error body"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_segments_encoded() {
        assert!(Backend::new("ftp://x").is_err());
        assert!(Backend::new("not a url").is_err());
        let backend = Backend::new("http://127.0.0.1:1/prefix").unwrap();
        assert_eq!(backend.base.as_str(), "http://127.0.0.1:1/prefix/");
        let mut url = backend.base.clone();
        url.path_segments_mut()
            .unwrap()
            .pop_if_empty()
            .extend(["api", "products", "a b/c?"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/prefix/api/products/a%20b%2Fc%3F"
        );
    }

    #[tokio::test]
    async fn an_unreachable_api_is_unavailable_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let backend = Backend::new(&format!("http://{addr}")).unwrap();
        let err = backend.products("r1").await.unwrap_err();
        assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
    }
}
