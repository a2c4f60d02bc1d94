//! Data in step: writes go to the monolith only; the events the proxy derives from those
//! exchanges — the root routes.toml's `[[routes.emit]]` rules, compiled by the strangler
//! library and fed what the proxy sees (path parameters, headers, both bodies) — are applied
//! to the API service; then the service answers every read exactly as the monolith does.
//! Applying the whole stream a second time (a replay) changes nothing.

use std::path::Path;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::json;
use strangler::events::Event;
use strangler::events::emit::{BodySeen, Extractor, Rules, Seen, template_params};

use super::{Case, differences, legacy};
use crate::api::events::apply;
use crate::api::storage::Database;
use crate::api::test_support::{PgSchema, Reply, call, stable};
use crate::api::{Api, router};

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

/// The events the proxy would publish for this exchange.
fn events_for(routes: &[EmitRoute], case: &Case, reply: &Reply) -> Vec<Event> {
    let path = case.uri.split('?').next().unwrap_or_default();
    let mut request_headers = HeaderMap::new();
    for (name, value) in &case.headers {
        request_headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let mut out = Vec::new();
    for route in routes {
        let method_ok = route.methods.is_empty()
            || route
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(case.method.as_str()));
        let Some(params) = fit(&route.template, path).filter(|_| method_ok) else {
            continue;
        };
        let extractor = Extractor::new(Seen {
            params: &params,
            request_headers: &request_headers,
            response_headers: &reply.headers,
            request_body: BodySeen::Complete(&case.body),
            response_body: BodySeen::Complete(&reply.body),
        });
        for rule in route.rules.iter() {
            if rule.fires(&case.method, reply.status) {
                let data = rule
                    .extract(&extractor)
                    .unwrap_or_else(|skip| panic!("{} on {}: {skip:?}", rule.kind(), case.uri));
                out.push(Event::new(rule.kind(), Some(&route.id), "test", data));
            }
        }
    }
    out
}

/// The monolith's day: orders placed and cancelled, a price change, a batch, allocations, a
/// shrunk batch — and requests it refuses, which publish nothing.
fn writes() -> Vec<Case> {
    let post = |uri: &str, body| Case::json(Method::POST, uri, body);
    vec![
        post("/api/orders", json!({"sku": "GLASS-VASE", "quantity": 3})),
        post("/api/orders", json!({"sku": "RED-CHAIR", "quantity": 2})),
        post("/api/orders", json!({"sku": "NOPE", "quantity": 1})),
        Case::new(Method::DELETE, "/api/orders/ord-000003"),
        post("/api/orders", json!({"sku": "BLUE-LAMP", "quantity": 4})),
        Case::json(
            Method::PUT,
            "/api/products/BLUE-LAMP",
            json!({"price_cents": 3100}),
        ),
        post("/api/orders", json!({"sku": "BLUE-LAMP", "quantity": 1})),
        post(
            "/api/batches",
            json!({"reference": "t-b", "sku": "BLUE-LAMP", "quantity": 10}),
        ),
        post(
            "/api/batches",
            json!({"reference": "t-s", "sku": "BLUE-LAMP", "quantity": 10, "eta": "2026-04-01"}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "ord-000005", "sku": "BLUE-LAMP", "qty": 4}),
        ),
        post(
            "/api/allocate",
            json!({"orderid": "o-2", "sku": "BLUE-LAMP", "qty": 5}),
        ),
        Case::json(Method::PATCH, "/api/batches/t-b", json!({"quantity": 6})),
        post("/api/orders", json!({"sku": "COTTON-THROW", "quantity": 1})),
    ]
}

/// Reads that must answer alike (with a request id, since the two saw different traffic).
fn reads() -> Vec<Case> {
    [
        "/api/orders",
        "/api/orders/ord-000004",
        "/api/orders/ord-000003",
        "/api/products",
        "/api/products/BLUE-LAMP",
        "/api/batches",
        "/api/batches/t-b",
    ]
    .into_iter()
    .map(|uri| Case::get(uri).header("x-request-id", "in-step"))
    .collect()
}

async fn assert_in_step(legacy: &Router, api: &Api) {
    let service = router(api.clone());
    let mut failures = Vec::new();
    for case in reads() {
        let a = call(legacy, case.request()).await;
        let b = call(&service, case.request()).await;
        let diff = differences(&a, &b);
        if !diff.is_empty() {
            failures.push(format!("GET {}:\n  {}", case.uri, diff.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn monolith_and_service_stay_in_step(database: Database) {
    let routes = emit_routes();
    let legacy = legacy();
    let mut events = Vec::new();
    for case in writes() {
        let reply = call(&legacy, case.request()).await;
        events.extend(events_for(&routes, &case, &reply));
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "shop.order.placed",
            "shop.order.placed",
            "shop.order.cancelled",
            "shop.order.placed",
            "shop.product.updated",
            "shop.order.placed",
            "shop.batch.added",
            "shop.batch.added",
            "shop.line.allocated",
            "shop.line.allocated",
            "shop.batch.quantity_changed",
        ]
    );
    let api = Api::open(&stable(database)).await.unwrap();
    for event in events.iter().chain(&events) {
        apply(api.store(), event).await.unwrap();
    }
    assert_in_step(&legacy, &api).await;
}

#[tokio::test]
async fn sqlite_service_stays_in_step_with_the_monolith() {
    monolith_and_service_stay_in_step(Database::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_service_stays_in_step_with_the_monolith() {
    let Some(schema) = PgSchema::new() else {
        return;
    };
    monolith_and_service_stay_in_step(schema.database()).await;
}

#[test]
fn templates_fit_paths() {
    assert_eq!(
        fit("/api/orders/{id}", "/api/orders/ord-1"),
        Some(vec![("id".to_owned(), "ord-1".to_owned())])
    );
    assert_eq!(fit("/api/orders/{id}", "/api/orders"), None);
    assert_eq!(fit("/api/orders", "/api/orders"), Some(Vec::new()));
    assert_eq!(fit("/api/*", "/api/orders"), None);
}
