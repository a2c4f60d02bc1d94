//! The shop journeys as a client sees them: the answers recorded with every route on legacy
//! and compared after each step, the writes that place orders (through the JSON API, a cart
//! checked out through the API, and a page checkout: a form POST answered 303), and the
//! picture upload followed by its thumbnails.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use system_tests::Proxy;

use super::config::HEADERS;

/// One answer as the client sees it, with the declared noise masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Seen {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// The body's bytes (a thumbnail is compared byte for byte).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = match std::str::from_utf8(&self.body) {
            Ok(text) => text.to_owned(),
            Err(_) => format!("<{} bytes, sha256 {}>", self.body.len(), sha256(&self.body)),
        };
        f.debug_struct("Seen")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .finish()
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Sends `GET path` to `base` and masks the noise.
pub async fn seen(client: &reqwest::Client, base: &str, path: &str) -> Seen {
    let answer = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    observe(answer, &[]).await
}

/// The answer with the noise masked: the request id (header, and wherever a text body
/// repeats it), `Date`, `uptime_seconds`, and each of `masks` (e.g. a new image id).
pub async fn observe(answer: reqwest::Response, masks: &[(&str, &str)]) -> Seen {
    let status = answer.status().as_u16();
    let request_id = answer
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut headers: BTreeMap<String, String> = HEADERS
        .iter()
        .filter_map(|name| {
            let value = answer.headers().get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    let bytes = answer.bytes().await.unwrap().to_vec();
    let body = match String::from_utf8(bytes) {
        Ok(mut text) => {
            if !request_id.is_empty() {
                text = text.replace(&request_id, "<request-id>");
            }
            if let Ok(mut value) = serde_json::from_str::<Value>(&text) {
                if let Some(uptime) = value.get_mut("uptime_seconds") {
                    *uptime = json!("<uptime>");
                    text = value.to_string();
                }
            }
            for (from, to) in masks {
                text = text.replace(from, to);
            }
            text.into_bytes()
        }
        Err(e) => e.into_bytes(),
    };
    for value in headers.values_mut() {
        for (from, to) in masks {
            *value = value.replace(from, to);
        }
    }
    Seen {
        status,
        headers,
        body,
    }
}

/// The read journeys: pages, the JSON API and the misc endpoints, after `orders` were placed —
/// the feeds and the CSV export too, which show the orders and the stock they took (the misc
/// service's order consumer applies the monolith's `shop.order.placed` events to its
/// catalogue) — and the order pages, which the UI front renders from the extracted API.
pub fn reads(orders: &[String]) -> Vec<String> {
    let mut paths: Vec<String> = [
        "/",
        "/products",
        "/products?q=lamp",
        "/products/RED-CHAIR",
        "/products/BLUE-LAMP",
        "/products/NO-SUCH",
        "/api/products",
        "/api/products/RED-CHAIR",
        "/api/products/NO-SUCH",
        "/api/orders",
        "/misc/health",
        "/misc/currency?amount=10&from=USD&to=EUR",
        "/misc/currency?amount=0.125&from=USD&to=USD",
        "/misc/currency?amount=abc&from=USD&to=EUR",
        "/misc/feed.rss",
        "/misc/feed.atom",
        "/misc/export.csv",
        "/misc/thumbnail?image=img-1&w=48&h=48",
        "/misc/thumbnail?image=img-404",
    ]
    .map(str::to_owned)
    .to_vec();
    paths.extend(orders.iter().map(|id| format!("/api/orders/{id}")));
    paths.extend(orders.iter().map(|id| format!("/orders/{id}")));
    paths.push("/api/orders/ord-999999".to_owned());
    paths.push("/orders/ord-999999".to_owned());
    paths
}

/// The answers to `GET` of each of `paths`, in order.
pub async fn record(client: &reqwest::Client, base: &str, paths: &[String]) -> Vec<Seen> {
    let mut answers = Vec::new();
    for path in paths {
        answers.push(seen(client, base, path).await);
    }
    answers
}

/// `answers` from the server at `base` with its address masked (`<host>`), so the links in
/// two servers' feeds compare equal.
pub fn unhosted(answers: Vec<Seen>, base: &str) -> Vec<Seen> {
    let host = base.trim_start_matches("http://");
    answers
        .into_iter()
        .map(|mut seen| {
            if let Ok(text) = std::str::from_utf8(&seen.body) {
                seen.body = text.replace(host, "<host>").into_bytes();
            }
            seen
        })
        .collect()
}

/// Every read journey answers as recorded; fails listing each that does not.
pub async fn assert_as_recorded(
    client: &reqwest::Client,
    proxy: &Proxy,
    step: &str,
    paths: &[String],
    recorded: &[Seen],
) {
    let now = record(client, &proxy.url(), paths).await;
    assert_same(step, paths, recorded, &now);
}

/// `now` equals `recorded`, answer by answer; fails listing each that does not.
pub fn assert_same(step: &str, paths: &[String], recorded: &[Seen], now: &[Seen]) {
    assert_eq!(recorded.len(), now.len(), "after {step}: journeys run");
    let differ: Vec<String> = paths
        .iter()
        .zip(recorded.iter().zip(now))
        .filter(|(_, (was, is))| was != is)
        .map(|(path, (was, is))| format!("GET {path}\n  recorded {was:?}\n  now      {is:?}"))
        .collect();
    assert!(
        differ.is_empty(),
        "after {step}: {} of {} journeys differ:\n{}",
        differ.len(),
        paths.len(),
        differ.join("\n")
    );
}

/// The writes, with every route on legacy: an order through the API, a cart checked out
/// through the API, and a cart filled and checked out through the pages (form POSTs answered
/// 303, the last one to `/orders/{id}`). Returns the three order ids.
pub async fn place_orders(client: &reqwest::Client, base: &str) -> Vec<String> {
    let order = client
        .post(format!("{base}/api/orders"))
        .json(&json!({ "sku": "RED-CHAIR", "quantity": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 201);
    let order: Value = order.json().await.unwrap();

    let cart = client
        .post(format!("{base}/api/carts"))
        .send()
        .await
        .unwrap();
    assert_eq!(cart.status(), 201);
    let session = cart.json::<Value>().await.unwrap()["session"]
        .as_str()
        .unwrap()
        .to_owned();
    let added = client
        .post(format!("{base}/api/carts/{session}"))
        .json(&json!({ "sku": "BLUE-LAMP", "quantity": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let checkout = client
        .post(format!("{base}/api/carts/{session}/checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), 201);
    let checked_out: Value = checkout.json().await.unwrap();

    let mut ids: Vec<String> = [order, checked_out]
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    ids.push(page_checkout(client, base).await);
    ids
}

/// A visitor fills a cart through the pages and places the order with the checkout form:
/// `POST /cart/add` (form) → 303 with the `session` cookie, a second line, then
/// `POST /cart/checkout` → 303 to `/orders/{id}`. Returns the order id.
async fn page_checkout(client: &reqwest::Client, base: &str) -> String {
    let form = |body: &'static str| {
        client
            .post(format!("{base}/cart/add"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let first = form("sku=GLASS-VASE&quantity=1").send().await.unwrap();
    assert_eq!(first.status(), 303);
    let cookie = first
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the first cart line sets the session cookie")
        .to_owned();
    let second = form("sku=RED-CHAIR&quantity=1")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 303);
    let checkout = client
        .post(format!("{base}/cart/checkout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), 303);
    let location = checkout
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("the checkout redirects to the order")
        .to_owned();
    location
        .strip_prefix("/orders/")
        .unwrap_or_else(|| panic!("checkout redirected to {location}"))
        .to_owned()
}

/// A picture as the upload form sends it: a 160×100 PNG gradient.
fn picture() -> Vec<u8> {
    let image = image::RgbImage::from_fn(160, 100, |x, y| {
        image::Rgb([(x * 255 / 160) as u8, (y * 255 / 100) as u8, 128])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode the picture");
    png.into_inner()
}

/// Uploads the picture through the proxy as the upload page's form does (multipart, field
/// `image`). Returns the answer with the new image's id masked (`<image-id>`: every upload
/// gets a new one), and that id.
pub async fn upload(client: &reqwest::Client, base: &str) -> (Seen, String) {
    let mut body = b"--journey\r\nContent-Disposition: form-data; name=\"image\"; filename=\"gradient.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
    body.extend_from_slice(&picture());
    body.extend_from_slice(b"\r\n--journey--\r\n");
    let answer = client
        .post(format!("{base}/images"))
        .header("content-type", "multipart/form-data; boundary=journey")
        .body(body)
        .send()
        .await
        .unwrap();
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let id = location
        .strip_prefix("/images/")
        .unwrap_or_else(|| panic!("upload answered {} at {location:?}", answer.status()))
        .to_owned();
    (observe(answer, &[(&id, "<image-id>")]).await, id)
}

/// The thumbnails of image `id` a shop shows: the three sizes the worker renders ahead of
/// time (default 128, 48 and 240) and one it does not (64, rendered from the stored picture).
pub fn thumbnails(id: &str) -> Vec<String> {
    ["", "&w=48&h=48", "&w=240&h=240", "&w=64&h=64"]
        .iter()
        .map(|size| format!("/misc/thumbnail?image={id}{size}"))
        .collect()
}
