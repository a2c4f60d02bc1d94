//! Events derived from traffic, end to end: the proxy with the embedded log bus in front of
//! legacy-shim publishes `emit` rule events (`shop.order.placed`, `shop.image.uploaded`),
//! exchange events with credentials redacted, shadow comparisons under the exchange's
//! correlation id, and config events on reload. The log's JSON lines are read directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use system_tests::{Legacy, Proxy, raw_client, routes_toml, wait};

const DEADLINE: Duration = Duration::from_secs(10);

fn config(legacy: &str, products_mode: &str) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.candidate]
url = "{legacy}"

[[routes]]
id = "products"
match = {{ path = "/api/products/{{sku}}", methods = ["GET"] }}
mode = "{products_mode}"
extracted = "candidate"
events = {{ headers = ["authorization", "cookie", "accept", "x-request-id"] }}

[[routes]]
id = "api-orders"
match = {{ path = "/api/orders" }}
mode = "legacy"
events = {{ headers = ["authorization", "cookie", "content-type"] }}

[[routes.emit]]
type = "shop.order.placed"
when = {{ methods = ["POST"], status = [201] }}
data = {{ order_id = "response:/id", sku = "request:/sku", quantity = "request:/quantity" }}

[[routes]]
id = "images-upload"
match = {{ path = "/images", methods = ["POST"] }}
mode = "legacy"

[[routes.emit]]
type = "shop.image.uploaded"
when = {{ methods = ["POST"], status = ["2xx"] }}
data = {{ image_id = "response:/id", url = "response:/url", content_type = "response:/content_type" }}

[bus]
kind = "log"
path = "events"
fsync = "never"
"#
        ),
    )
}

/// Every event in the log folder so far (a line still being written is skipped).
fn read_log(dir: &Path) -> Vec<Value> {
    let segments = strangler::events::segment::list(dir).unwrap();
    segments
        .iter()
        .flat_map(|(_, path)| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            text.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits for the first event of `kind` that satisfies `pick`.
async fn event(dir: &Path, kind: &str, pick: impl Fn(&Value) -> bool) -> Value {
    wait::eventually(&format!("a {kind} event"), DEADLINE, || {
        let found = read_log(dir)
            .into_iter()
            .find(|e| e["type"] == kind && pick(e));
        async move { found }
    })
    .await
}

fn png() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(4, 4, |x, y| image::Rgb([x as u8 * 60, y as u8, 9]));
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode a PNG");
    out.into_inner()
}

#[tokio::test]
async fn emit_rules_exchanges_shadow_and_config_events_reach_the_log() {
    let legacy = Legacy::stable().await;
    let proxy = Proxy::start(&config(&legacy.url(), "shadow")).await;
    let log = proxy.dir.path().join("events");
    let client = raw_client();

    // An order: 201 → shop.order.placed, plus its exchange event with credentials redacted.
    let placed = client
        .post(format!("{}/api/orders", proxy.url()))
        .header("authorization", "Bearer s3cret")
        .header("cookie", "session=abc")
        .header("x-request-id", "order-1")
        .json(&json!({"sku": "GLASS-VASE", "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let order: Value = placed.json().await.unwrap();
    let domain = event(&log, "shop.order.placed", |_| true).await;
    assert_eq!(domain["subject"], "api-orders");
    assert_eq!(domain["correlationid"], "order-1");
    assert_eq!(
        domain["data"],
        json!({"order_id": order["id"], "sku": "GLASS-VASE", "quantity": 2})
    );
    let seen = event(&log, "strangler.exchange.seen.v1", |e| {
        e["correlationid"] == "order-1"
    })
    .await;
    let data = &seen["data"];
    assert_eq!(data["route"], "api-orders");
    assert_eq!(data["status"], 201);
    assert_eq!(data["method"], "POST");
    assert_eq!(data["side"], "legacy");
    assert_eq!(data["upstream"], "legacy");
    assert_eq!(data["request_headers"]["authorization"], "[redacted]");
    assert_eq!(data["request_headers"]["cookie"], "[redacted]");
    assert_eq!(data["request_headers"]["content-type"], "application/json");
    assert!(data["sizes"]["request_bytes"].as_u64().unwrap() > 0);
    assert!(data["sizes"]["response_bytes"].as_u64().unwrap() > 0);
    let text = read_log(&log)
        .iter()
        .map(Value::to_string)
        .collect::<String>();
    assert!(!text.contains("s3cret") && !text.contains("session=abc"));

    // An image upload: 201 → shop.image.uploaded with the stored picture's fields.
    let uploaded = client
        .post(format!("{}/images", proxy.url()))
        .header("content-type", "image/png")
        .body(png())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let image: Value = uploaded.json().await.unwrap();
    let domain = event(&log, "shop.image.uploaded", |_| true).await;
    assert_eq!(domain["subject"], "images-upload");
    assert_eq!(
        domain["data"],
        json!({"image_id": image["id"], "url": image["url"], "content_type": "image/png"})
    );

    // A shadowed read: its exchange event and its comparison share the correlation id.
    let product = client
        .get(format!("{}/api/products/RED-CHAIR", proxy.url()))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("x-request-id", "shadow-1")
        .send()
        .await
        .unwrap();
    assert_eq!(product.status(), 200);
    let _ = product.bytes().await.unwrap();
    let compared = event(&log, "strangler.shadow.compared.v1", |e| {
        e["data"]["route"] == "products"
    })
    .await;
    let seen = event(&log, "strangler.exchange.seen.v1", |e| {
        e["data"]["route"] == "products"
    })
    .await;
    assert_eq!(seen["correlationid"], "shadow-1");
    assert_eq!(compared["correlationid"], seen["correlationid"]);
    assert_eq!(compared["data"]["verdict"], "equal");
    assert_eq!(seen["data"]["mode"], "shadow");
    assert_eq!(seen["data"]["path_template"], "/api/products/{sku}");
    assert_eq!(seen["data"]["params"], json!({"sku": "RED-CHAIR"}));
    assert_eq!(
        seen["data"]["request_headers"]["authorization"],
        "[redacted]"
    );
    assert_eq!(seen["data"]["request_headers"]["x-request-id"], "shadow-1");

    // Unrouted exchanges are published too.
    let home = client
        .get(format!("{}/", proxy.url()))
        .send()
        .await
        .unwrap();
    let _ = home.bytes().await.unwrap();
    event(&log, "strangler.exchange.seen.v1", |e| {
        e["data"]["path"] == "/" && e["data"]["route"].is_null()
    })
    .await;

    // The rule tallies are visible in the admin API.
    let rules: Value = client
        .get(format!("{}/admin/events/emit", proxy.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let placed = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "shop.order.placed")
        .cloned()
        .unwrap();
    assert_eq!(placed["emitted"], 1, "{rules}");

    // A reload that flips a mode: config.reloaded and route.changed, one correlation id.
    std::fs::write(proxy.config_path(), config(&legacy.url(), "legacy")).unwrap();
    proxy.handle.reload().await;
    let reloaded = event(&log, "strangler.config.reloaded.v1", |_| true).await;
    assert_eq!(reloaded["data"]["trigger"], "admin");
    assert_eq!(
        reloaded["data"]["changed"],
        json!([{"route": "products", "from": "shadow", "to": "legacy"}])
    );
    let changed = event(&log, "strangler.route.changed.v1", |_| true).await;
    assert_eq!(changed["subject"], "products");
    assert_eq!(
        changed["data"],
        json!({"route": "products", "from": "shadow", "to": "legacy", "by": "admin", "reason": null})
    );
    assert_eq!(changed["correlationid"], reloaded["correlationid"]);

    // A broken file is refused, and says so on the bus.
    std::fs::write(proxy.config_path(), "default_upstream = 3\n").unwrap();
    proxy.handle.reload().await;
    let rejected = event(&log, "strangler.config.rejected.v1", |_| true).await;
    assert!(
        !rejected["data"]["errors"].as_array().unwrap().is_empty(),
        "{rejected}"
    );

    proxy.stop().await;
    legacy.stop().await;
}
