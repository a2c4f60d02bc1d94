//! The migration script as a whole-system test, on NATS: legacy-shim (the monolith), the
//! extracted misc service, API service and UI front, and the proxy in front of them with
//! every route on legacy. A fixed set of shop journeys is recorded as the client sees it;
//! then the misc, API and UI routes move legacy → shadow → canary → extracted through the
//! admin API, and after each step the read journeys answer as recorded (modulo declared
//! noise) while a background client sees no failed request during the flips. The bus tells
//! each step (`route.changed`) and carries the orders placed on legacy (`shop.order.placed`),
//! which keep the API service's own data equal to the monolith's — even when an event is
//! delivered twice, and when a new consumer rebuilds the projection from the stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use strangler::config::BusConfig;
use strangler::events::sink::ReadFrom;
use strangler::events::sink::nats::NatsSink;
use strangler::events::{Event, types};
use system_tests::services::Service;
use system_tests::{Legacy, Proxy, brokers, raw_client, routes_toml, wait};

const TOKEN: &str = "migration-admin-token";
const DEADLINE: Duration = Duration::from_secs(15);

/// The misc routes, in the order they move.
const MISC: [&str; 3] = ["health", "currency", "misc"];
/// The JSON API routes that move to the API service (carts stay with the monolith: the API
/// service has none).
const API: [&str; 4] = ["api-products", "api-orders", "api-order", "api"];
/// The page routes that move to the UI front.
const UI: [&str; 3] = ["pages-home", "pages-products", "pages-product"];

/// Headers a client relies on; the rest (date, request id, length of masked bodies) is noise.
const HEADERS: [&str; 7] = [
    "content-type",
    "location",
    "cache-control",
    "content-disposition",
    "vary",
    "set-cookie",
    "access-control-allow-origin",
];

fn config(legacy: &str, misc: &str, api: &str, ui: &str, bus: &BusConfig) -> String {
    let url = bus.url.as_deref().unwrap();
    let (stream, prefix) = (&bus.stream, &bus.subject_prefix);
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.misc]
url = "{misc}"

[upstreams.api]
url = "{api}"

[upstreams.ui]
url = "{ui}"

[[routes]]
id = "health"
match = {{ path = "/misc/health", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "misc"
canary = {{ percent = 50, key = "request_id" }}
diff = {{ ignore = ["/body/uptime_seconds"] }}

[[routes]]
id = "currency"
match = {{ path = "/misc/currency", methods = ["GET"] }}
mode = "legacy"
extracted = "misc"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "misc"
match = {{ path = "/misc/*" }}
mode = "legacy"
extracted = "misc"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "api-products"
match = {{ path = "/api/products/{{sku}}", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "api-orders"
match = {{ path = "/api/orders" }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes.emit]]
type = "shop.order.placed"
when = {{ methods = ["POST"], status = [201] }}
data = {{ order_id = "response:/id", sku = "request:/sku", quantity = "request:/quantity", created_at = "response:/created_at", status = "response:/status", lines = "response:/lines" }}

[[routes]]
id = "api-order"
match = {{ path = "/api/orders/{{id}}" }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "api-carts"
match = {{ path = "/api/carts" }}
mode = "legacy"

[[routes]]
id = "api-cart-checkout"
match = {{ path = "/api/carts/{{session}}/checkout" }}
mode = "legacy"

[[routes.emit]]
type = "shop.order.placed"
when = {{ methods = ["POST"], status = [201] }}
data = {{ order_id = "response:/id", created_at = "response:/created_at", status = "response:/status", lines = "response:/lines" }}

[[routes]]
id = "api-cart"
match = {{ path = "/api/carts/*" }}
mode = "legacy"

[[routes]]
id = "api"
match = {{ path = "/api/*" }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "pages-home"
match = {{ path = "/", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "ui"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "pages-products"
match = {{ path = "/products", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "ui"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "pages-product"
match = {{ path = "/products/{{sku}}", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "ui"
canary = {{ percent = 50, key = "request_id" }}

[bus]
kind = "nats"
url = "{url}"
stream = "{stream}"
subject_prefix = "{prefix}"
"#
        ),
    )
    .replace(
        "[admin]\naddress = \"127.0.0.1:0\"\n",
        "[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"admin-token\"\n",
    )
}

/// One answer as the client sees it, with the declared noise masked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Sends `method path` (with an optional JSON body) to `base` and masks the noise: the
/// request id (header, and wherever the body repeats it), `Date`, and `uptime_seconds`.
async fn seen(client: &reqwest::Client, base: &str, method: &str, path: &str) -> Seen {
    let request = client.request(method.parse().unwrap(), format!("{base}{path}"));
    let answer = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    observe(answer).await
}

async fn observe(answer: reqwest::Response) -> Seen {
    let status = answer.status().as_u16();
    let request_id = answer
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let headers = HEADERS
        .iter()
        .filter_map(|name| {
            let value = answer.headers().get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    let mut body = answer.text().await.unwrap();
    if !request_id.is_empty() {
        body = body.replace(&request_id, "<request-id>");
    }
    if let Ok(mut value) = serde_json::from_str::<Value>(&body) {
        if let Some(uptime) = value.get_mut("uptime_seconds") {
            *uptime = json!("<uptime>");
            body = value.to_string();
        }
    }
    Seen {
        status,
        headers,
        body,
    }
}

/// The read journeys: pages, the JSON API and the misc endpoints, after `orders` were placed —
/// the feeds and the CSV export too, which show the orders and the stock they took: the misc
/// service's order consumer applies the monolith's `shop.order.placed` events to its catalogue.
fn reads(orders: &[String]) -> Vec<String> {
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
    ]
    .map(str::to_owned)
    .to_vec();
    paths.extend(orders.iter().map(|id| format!("/api/orders/{id}")));
    paths.push("/api/orders/ord-999999".to_owned());
    paths
}

async fn record(client: &reqwest::Client, base: &str, paths: &[String]) -> Vec<Seen> {
    let mut answers = Vec::new();
    for path in paths {
        answers.push(seen(client, base, "GET", path).await);
    }
    answers
}

/// Every read journey answers as recorded; fails listing each that does not.
async fn assert_as_recorded(
    client: &reqwest::Client,
    proxy: &Proxy,
    step: &str,
    paths: &[String],
    recorded: &[Seen],
) {
    let now = record(client, &proxy.url(), paths).await;
    let differ: Vec<String> = paths
        .iter()
        .zip(recorded.iter().zip(&now))
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
/// through the API, a line added to a page cart. Returns the two order ids.
async fn place_orders(client: &reqwest::Client, base: &str) -> Vec<String> {
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

    let page_cart = client
        .post(format!("{base}/cart/add"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("sku=GLASS-VASE&quantity=1")
        .send()
        .await
        .unwrap();
    assert_eq!(page_cart.status(), 303);

    [order, checked_out]
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A client sending reads of every kind until `stop`; returns (sent, failed).
fn background(proxy_url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let client = raw_client();
        let paths = [
            "/misc/currency?amount=10&from=USD&to=EUR",
            "/misc/health",
            "/api/products/RED-CHAIR",
            "/api/products",
            "/products",
            "/products/RED-CHAIR",
        ];
        let (mut sent, mut failed) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for path in paths.iter().cycle() {
            if stop.load(Ordering::SeqCst) || tokio::time::Instant::now() > deadline {
                break;
            }
            let answer = client.get(format!("{proxy_url}{path}")).send().await;
            sent += 1;
            match answer {
                Ok(a) if a.status().is_success() => {}
                Ok(a) => {
                    eprintln!("background GET {path}: {}", a.status());
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("background GET {path}: {e}");
                    failed += 1;
                }
            }
        }
        (sent, failed)
    })
}

/// Moves `route` to `mode` (a canary at 50%) through the admin API and waits until it is live.
async fn flip(client: &reqwest::Client, proxy: &Proxy, route: &str, mode: &str) {
    let body = match mode {
        "canary" => json!({ "mode": mode, "percent": 50, "reason": "migration test" }),
        _ => json!({ "mode": mode, "reason": "migration test" }),
    };
    let answer = client
        .put(format!("{}/admin/routes/{route}", proxy.admin_url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let said: Value = answer.json().await.unwrap();
    assert_eq!(status, 200, "flip {route} to {mode}: {said}");
    // The reload may be the file watcher's rather than this request's: wait for the live view.
    let url = format!("{}/admin/routes/{route}", proxy.admin_url());
    wait::eventually(&format!("{route} live in {mode}"), DEADLINE, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let view: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (view["mode"] == mode).then_some(())
        }
    })
    .await;
}

/// The events on the bus so far, oldest first.
async fn on_the_bus(sink: &NatsSink) -> Vec<Event> {
    sink.read(ReadFrom::Start, 100_000).await.unwrap()
}

/// The `route.changed` steps of `route` on the bus, as their `to` stages.
fn steps(events: &[Event], route: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == types::ROUTE_CHANGED && e.data["route"] == route)
        .map(|e| e.data["to"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Waits until durable consumer `name` of the API service has applied and acknowledged every
/// `shop.order.placed` on the stream.
async fn caught_up(bus: &BusConfig, name: &str) {
    let client = async_nats::connect(bus.url.as_deref().unwrap())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let durable = format!("{name}__shop_order_placed");
    wait::eventually(&format!("consumer {durable} caught up"), DEADLINE, || {
        let (js, durable) = (js.clone(), durable.clone());
        async move {
            let stream = js.get_stream(&bus.stream).await.ok()?;
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer(&durable).await.ok()?;
            let info = consumer.info().await.ok()?;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0)
                .then_some(())
        }
    })
    .await;
}

/// What the API service at `base` says about `orders` and the products they bought.
async fn projection(client: &reqwest::Client, base: &str, orders: &[String]) -> Vec<Seen> {
    let mut paths: Vec<String> = orders
        .iter()
        .map(|id| format!("/api/orders/{id}"))
        .collect();
    paths.extend(
        [
            "/api/orders",
            "/api/products/RED-CHAIR",
            "/api/products/BLUE-LAMP",
        ]
        .map(str::to_owned),
    );
    record(client, base, &paths).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_moves_route_by_route_and_no_client_notices() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bus = brokers::nats_bus(&nats);
    let client = raw_client();

    // The monolith, the extracted services, and the proxy with every route on legacy.
    let legacy = Legacy::stable().await;
    let (misc_bound, api_bound, ui_bound) = (
        Service::bind().await,
        Service::bind().await,
        Service::bind().await,
    );
    let toml = config(
        &legacy.url(),
        &misc_bound.url(),
        &api_bound.url(),
        &ui_bound.url(),
        &bus,
    );
    let proxy = Proxy::start_with_files(&toml, &[("admin-token", TOKEN.as_bytes())]).await;
    let misc_consumer = brokers::unique("misc");
    let misc = Service::misc_live(misc_bound, proxy.config_path(), misc_consumer.clone());
    let consumer = brokers::unique("api");
    let api = Service::api(api_bound, proxy.config_path(), consumer.clone());
    let ui = Service::ui(ui_bound, proxy.url());
    let sink = NatsSink::connect(&bus).await.unwrap();

    // Record the journeys with every route on legacy.
    let orders = place_orders(&client, &proxy.url()).await;
    let paths = reads(&orders);
    let recorded = record(&client, &proxy.url(), &paths).await;
    assert!(
        recorded.iter().filter(|s| s.status == 200).count() >= 12,
        "the journeys mostly succeed on legacy: {recorded:#?}"
    );

    // The orders placed on legacy are on the bus, and the API service catches up on them.
    let placed: Vec<Event> = wait::eventually("two shop.order.placed events", DEADLINE, || {
        let sink = &sink;
        async move {
            let placed: Vec<Event> = on_the_bus(sink)
                .await
                .into_iter()
                .filter(|e| e.kind == "shop.order.placed")
                .collect();
            (placed.len() >= 2).then_some(placed)
        }
    })
    .await;
    let ids: Vec<&str> = placed
        .iter()
        .map(|e| e.data["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids, orders,
        "shop.order.placed for each order placed on legacy"
    );
    caught_up(&bus, &consumer).await;
    caught_up(&bus, &misc_consumer).await;
    let monolith = projection(&client, &legacy.url(), &orders).await;
    assert_eq!(
        projection(&client, &api.url(), &orders).await,
        monolith,
        "the API service's data equals the monolith's after consuming its events"
    );

    // Move misc, then the API, then the UI, one stage at a time, with a client watching.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = background(proxy.url(), stop.clone());
    for (group, routes) in [("misc", &MISC[..]), ("API", &API[..]), ("UI", &UI[..])] {
        for mode in ["shadow", "canary", "extracted"] {
            for route in routes {
                flip(&client, &proxy, route, mode).await;
            }
            assert_as_recorded(
                &client,
                &proxy,
                &format!("{group} → {mode}"),
                &paths,
                &recorded,
            )
            .await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (sent, failed) = watcher.await.unwrap();
    assert!(sent > 0, "the background client sent requests");
    assert_eq!(failed, 0, "failed requests during the flips (of {sent})");

    // The bus tells each step.
    let events = wait::eventually("every route.changed on the bus", DEADLINE, || {
        let sink = &sink;
        async move {
            let events = on_the_bus(sink).await;
            MISC.iter()
                .chain(&API)
                .chain(&UI)
                .all(|route| steps(&events, route).len() >= 3)
                .then_some(events)
        }
    })
    .await;
    for route in MISC.iter().chain(&API).chain(&UI) {
        assert_eq!(
            steps(&events, route),
            ["shadow", "canary", "extracted"],
            "route.changed events of {route}"
        );
    }

    // Redelivery: the first order's event arrives again (a new message, same event id); the
    // API service applies it once.
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap());
    let again = &placed[0];
    let subject = format!(
        "{}.{}.{}",
        bus.subject_prefix,
        again.kind,
        again.subject.as_deref().unwrap_or("_")
    );
    js.publish(subject, serde_json::to_vec(again).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
    caught_up(&bus, &consumer).await;
    assert_eq!(
        projection(&client, &api.url(), &orders).await,
        monolith,
        "a redelivered event changed nothing"
    );

    // Rebuild: a second API service with a new consumer name replays the stream from the
    // start (duplicate included) into an empty database and ends with the same projection.
    let rebuilt_name = brokers::unique("rebuild");
    let rebuilt = Service::api(
        Service::bind().await,
        proxy.config_path(),
        rebuilt_name.clone(),
    );
    caught_up(&bus, &rebuilt_name).await;
    assert_eq!(
        projection(&client, &rebuilt.url(), &orders).await,
        monolith,
        "the projection rebuilt from the stream"
    );

    rebuilt.stop().await;
    ui.stop().await;
    api.stop().await;
    proxy.stop().await;
    misc.stop().await;
    legacy.stop().await;
    brokers::delete_nats_stream(&bus).await;
}
