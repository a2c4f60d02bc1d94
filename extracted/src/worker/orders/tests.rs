//! The consumer in step with a real monolith: writes go to legacy-shim (stable) only; the
//! events the proxy would derive from those exchanges — the root routes.toml's `emit` rules,
//! compiled by the strangler library and fed what the proxy sees — are published on the
//! embedded log bus in a temp folder; the consumer applies them, and then the feeds and the
//! export of the misc service answer byte for byte as the monolith's. A second pass over the
//! same events (a replay) changes nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use serde_json::json;
use strangler::config::{BusConfig, BusKind};
use strangler::events::Event;
use strangler::events::emit::{BodySeen, Extractor, Rules, Seen, template_params};
use strangler::events::sink::Sink;
use tokio::sync::oneshot;

use super::*;
use crate::misc::catalogue::ORDER_PLACED;
use crate::misc::test_support::{Reply, call};
use crate::misc::{Options, live_app};

/// How long the consumer may take to apply what was published.
const WITHIN: Duration = Duration::from_secs(20);

/// The reads that must answer alike once the events are in.
const READS: &[&str] = &["/misc/feed.rss", "/misc/feed.atom", "/misc/export.csv"];

/// A route of the root routes.toml that derives events, compiled.
struct EmitRoute {
    id: String,
    template: String,
    methods: Vec<String>,
    rules: Rules,
}

fn emit_routes() -> Vec<EmitRoute> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../routes.toml");
    let config = strangler::config::load(&path).unwrap_or_else(|diags| panic!("{diags}"));
    config
        .raw()
        .routes
        .iter()
        .filter(|route| !route.emit.is_empty())
        .map(|route| EmitRoute {
            id: route.id.clone(),
            template: route.matcher.path.clone(),
            methods: route.matcher.methods.clone(),
            rules: Rules::compile(&route.emit, &template_params(&route.matcher.path), None)
                .unwrap_or_else(|problems| panic!("{}: {problems:?}", route.id)),
        })
        .collect()
}

/// The path parameters when `path` fits `template` (`{name}` is one segment).
fn fit(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() || template.ends_with('*') {
        return None;
    }
    let mut params = Vec::new();
    for (want, got) in t.iter().zip(&p) {
        match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !got.is_empty() => params.push((name.to_owned(), (*got).to_owned())),
            Some(_) => return None,
            None if want != got => return None,
            None => {}
        }
    }
    Some(params)
}

/// One write to the monolith.
struct Write {
    method: Method,
    uri: &'static str,
    body: Option<serde_json::Value>,
}

fn write(method: Method, uri: &'static str, body: serde_json::Value) -> Write {
    Write {
        method,
        uri,
        body: Some(body),
    }
}

/// The monolith's day: more orders than a feed lists, a cancellation, a price change after
/// orders at the old price, a cart checkout, and refused requests that publish nothing.
fn writes() -> Vec<Write> {
    let order = |sku: &str, quantity: i64| {
        write(
            Method::POST,
            "/api/orders",
            json!({"sku": sku, "quantity": quantity}),
        )
    };
    let mut out = vec![
        order("GLASS-VASE", 3),
        order("RED-CHAIR", 2),
        order("NOPE", 1),
        order("GREEN-SOFA", 99),
        Write {
            method: Method::DELETE,
            uri: "/api/orders/ord-000003",
            body: None,
        },
        order("BLUE-LAMP", 4),
        write(
            Method::PUT,
            "/api/products/BLUE-LAMP",
            json!({"price_cents": 3100, "description": "Now with a \"brass\" switch, 2 m cord"}),
        ),
        write(
            Method::POST,
            "/api/carts/s-1",
            json!({"sku": "WOOL-RUG", "quantity": 1}),
        ),
        write(
            Method::POST,
            "/api/carts/s-1",
            json!({"sku": "CERAMIC-MUG", "quantity": 6}),
        ),
        write(Method::POST, "/api/carts/s-1/checkout", json!({})),
        write(Method::PUT, "/api/products/NOPE", json!({"price_cents": 1})),
    ];
    for (n, sku) in ["BLUE-LAMP", "CERAMIC-MUG", "PINE-SHELF"]
        .iter()
        .cycle()
        .take(9)
        .enumerate()
    {
        out.push(order(sku, n as i64 % 3 + 1));
    }
    out
}

/// Sends `write` to the monolith; returns the events the proxy would publish for it.
async fn send(legacy: &Router, routes: &[EmitRoute], write: &Write) -> Vec<Event> {
    let mut request_headers = HeaderMap::new();
    let body = match &write.body {
        Some(body) => {
            request_headers.insert(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("application/json"),
            );
            serde_json::to_vec(body).unwrap()
        }
        None => Vec::new(),
    };
    let mut request = Request::builder()
        .method(write.method.clone())
        .uri(write.uri);
    for (name, value) in &request_headers {
        request = request.header(name, value);
    }
    let reply = call(legacy, request.body(Body::from(body.clone())).unwrap()).await;
    let mut out = Vec::new();
    for route in routes {
        let method_ok = route.methods.is_empty()
            || route
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(write.method.as_str()));
        let Some(params) = fit(&route.template, write.uri).filter(|_| method_ok) else {
            continue;
        };
        let extractor = Extractor::new(Seen {
            params: &params,
            request_headers: &request_headers,
            response_headers: &reply.headers,
            request_body: BodySeen::Complete(&body),
            response_body: BodySeen::Complete(&reply.body),
        });
        for rule in route.rules.iter() {
            if rule.fires(&write.method, reply.status) {
                let data = rule
                    .extract(&extractor)
                    .unwrap_or_else(|skip| panic!("{} on {}: {skip:?}", rule.kind(), write.uri));
                out.push(Event::new(rule.kind(), Some(&route.id), "test", data));
            }
        }
    }
    out
}

/// A read with a fixed host, so the feeds' absolute links agree.
async fn read(app: &Router, uri: &str) -> Reply {
    let request = Request::get(uri)
        .header("host", "shop.example")
        .body(Body::empty())
        .unwrap();
    call(app, request).await
}

/// The reads whose bodies differ between the two (empty when in step).
async fn differing(legacy: &Router, misc: &Router) -> Vec<String> {
    let mut out = Vec::new();
    for uri in READS {
        let (theirs, ours) = (read(legacy, uri).await, read(misc, uri).await);
        let same = theirs.status == ours.status
            && theirs.header("content-type") == ours.header("content-type")
            && theirs.body == ours.body;
        if !same {
            out.push(format!(
                "{uri}:\n--- monolith\n{}\n--- misc\n{}",
                String::from_utf8_lossy(&theirs.body),
                String::from_utf8_lossy(&ours.body)
            ));
        }
    }
    out
}

fn log_bus() -> BusConfig {
    BusConfig {
        kind: BusKind::Log,
        path: Some("events".into()),
        ..BusConfig::default()
    }
}

#[tokio::test]
async fn feeds_and_export_follow_the_monoliths_writes() {
    let legacy = crate::misc::contract::legacy();
    let catalogue = Catalogue::seed(false);
    let misc = live_app(
        Options {
            vary: false,
            defect: false,
            pictures: None,
        },
        Some(catalogue.clone()),
    );
    let routes = emit_routes();
    let mut events = Vec::new();
    for write in writes() {
        events.extend(send(&legacy, &routes, &write).await);
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == ORDER_PLACED).count(), 13);
    assert!(kinds.contains(&"shop.order.cancelled") && kinds.contains(&"shop.product.updated"));
    assert!(
        !differing(&legacy, &misc).await.is_empty(),
        "the monolith's writes must show in its feeds"
    );

    let base = tempfile::tempdir().unwrap();
    let sink = Sink::connect(&log_bus(), base.path()).await.unwrap();
    sink.publish(&events).await.unwrap();
    let settings = Settings {
        bus: log_bus(),
        base_dir: base.path().to_owned(),
        consumer: CONSUMER_NAME.to_owned(),
        legacy_url: "http://127.0.0.1:1".to_owned(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(settings, catalogue.clone(), async move {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + WITHIN;
    loop {
        let differences = differing(&legacy, &misc).await;
        if differences.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not in step in time:\n{}",
            differences.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();

    // A replay of the whole stream changes nothing.
    for event in &events {
        assert_eq!(catalogue.apply(event), Applied::Duplicate, "{}", event.kind);
    }
    assert_eq!(differing(&legacy, &misc).await, Vec::<String>::new());
}
