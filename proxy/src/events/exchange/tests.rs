use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::{Value, json};

use super::probe::{Probe, ResponseSeen};
use super::*;
use crate::config::from_toml_str;
use crate::forward::{Buffered, Prepared};
use crate::routing::Table;

const HEAD: &str = "default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[bus]\nkind = \"log\"\n";

struct Setup {
    plans: Plans,
    table: Table,
}

fn setup(routes: &str) -> Setup {
    let config = from_toml_str(&format!("{HEAD}{routes}"), "t.toml").unwrap();
    Setup {
        plans: Plans::compile(config.raw(), None).unwrap(),
        table: Table::compile(config.raw()).unwrap(),
    }
}

/// Runs one exchange through a probe and returns its events.
fn exchange(
    s: &Setup,
    request: Request<&'static str>,
    response: Response<()>,
    body: &[u8],
) -> Vec<Event> {
    let (parts, request_body) = request.into_parts();
    let found = s
        .table
        .find(&parts.method, None, parts.uri.path(), &parts.headers);
    let route = found.as_ref().map(|m| m.route);
    let Some(plan) = s.plans.get(route, &parts.method, true) else {
        return Vec::new();
    };
    let params: Vec<(&str, &str)> = found.iter().flat_map(|m| m.params()).collect();
    let mut probe = Probe::start(
        plan,
        true,
        "corr-1",
        &parts,
        params.into_iter(),
        Instant::now(),
    );
    probe.answered_by(&"legacy".into(), false);
    let whole = Prepared::Whole(Buffered::from_bytes(Bytes::from_static(
        request_body.as_bytes(),
    )));
    let _ = probe.request_body(whole);
    let (answered, cap) = probe.answer(&response);
    let copy = (cap > 0).then(|| Bytes::copy_from_slice(&body[..body.len().min(cap)]));
    Box::new(answered)
        .finish(ResponseSeen {
            bytes: body.len() as u64,
            copy,
            truncated: body.len() > cap,
            complete: true,
        })
        .events()
}

fn data_of(events: &[Event], kind: &str) -> Value {
    events
        .iter()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {events:#?}"))
        .data
        .value()
}

#[test]
fn exchange_event_shape_allow_list_and_redaction() {
    let s = setup(
        "[[routes]]\nid = \"products\"\nmatch = { path = \"/api/products/{sku}\" }\nmode = \"legacy\"\nevents = { headers = [\"authorization\", \"cookie\", \"set-cookie\", \"accept\", \"x-absent\", \"accept\"] }\n",
    );
    let request = Request::get("/api/products/caf%C3%A9?x=1&y")
        .header("authorization", "Bearer secret")
        .header("cookie", "session=s3cret")
        .header("accept", "application/json")
        .header("accept", "text/html")
        .header("user-agent", "not listed")
        .body("")
        .unwrap();
    let response = Response::builder()
        .status(200)
        .header("set-cookie", "a=1")
        .header("set-cookie", "b=2")
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let events = exchange(&s, request, response, b"{}");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, types::EXCHANGE_SEEN);
    assert_eq!(event.subject.as_deref(), Some("products"));
    assert_eq!(event.correlationid, "corr-1");
    assert_eq!(
        event.data.json().matches("\"accept\"").count(),
        1,
        "a header listed twice is written once: {}",
        event.data
    );
    let data = event.data.value();
    assert_eq!(data["route"], "products");
    assert_eq!(data["mode"], "legacy");
    assert_eq!(data["path_template"], "/api/products/{sku}");
    assert_eq!(data["path"], "/api/products/caf%C3%A9");
    assert_eq!(data["params"], json!({"sku": "café"}));
    assert_eq!(data["query"], "x=1&y");
    assert_eq!(data["status"], 200);
    assert_eq!(data["upstream"], "legacy");
    assert_eq!(data["side"], "legacy");
    assert_eq!(
        data["sizes"],
        json!({"request_bytes": 0, "response_bytes": 2})
    );
    assert_eq!(
        data["request_headers"],
        json!({"authorization": REDACTED, "cookie": REDACTED, "accept": "application/json, text/html"})
    );
    assert_eq!(data["response_headers"], json!({"set-cookie": REDACTED}));
    assert!(data.get("request_body").is_none());
    let parsed: ExchangeSeen = serde_json::from_value(data.clone()).unwrap();
    assert!(parsed.complete && parsed.latency.total_ms >= parsed.latency.ttfb_ms);
}

#[test]
fn default_headers_and_unrouted_exchanges() {
    let s = setup("");
    let request = Request::post("/nowhere")
        .header("authorization", "Bearer secret")
        .header("content-type", "text/plain")
        .header("x-request-id", "r-1")
        .body("hello")
        .unwrap();
    let response = Response::builder().status(404).body(()).unwrap();
    let events = exchange(&s, request, response, b"");
    let data = data_of(&events, types::EXCHANGE_SEEN);
    assert_eq!(data["route"], Value::Null);
    assert_eq!(data["mode"], Value::Null);
    assert_eq!(data["path_template"], Value::Null);
    assert_eq!(data["sizes"]["request_bytes"], 5);
    assert_eq!(
        data["request_headers"],
        json!({"content-type": "text/plain", "x-request-id": "r-1"})
    );
}

#[test]
fn bodies_are_capped_and_decoded() {
    let s = setup(
        "[[routes]]\nid = \"r\"\nmatch = { path = \"/r\" }\nmode = \"legacy\"\nevents = { bodies = true, max_body = 8 }\n",
    );
    let request = Request::post("/r").body("0123456789").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"short").unwrap();
    let gzipped = gz.finish().unwrap();
    let response = Response::builder()
        .header("content-encoding", "gzip")
        .body(())
        .unwrap();
    let events = exchange(&s, request, response, &gzipped);
    let data = data_of(&events, types::EXCHANGE_SEEN);
    assert_eq!(
        data["request_body"],
        json!({"encoding": "utf8", "data": "01234567", "truncated": true})
    );
    // The gzip stream is longer than 8 bytes, so the copy is cut and stays encoded.
    assert_eq!(data["response_body"]["truncated"], true);
    assert_eq!(data["response_body"]["encoding"], "base64");

    let roomy = setup(
        "[[routes]]\nid = \"r\"\nmatch = { path = \"/r\" }\nmode = \"legacy\"\nevents = { bodies = true }\n",
    );
    let request = Request::post("/r").body("").unwrap();
    let response = Response::builder()
        .header("content-encoding", "gzip")
        .body(())
        .unwrap();
    let events = exchange(&roomy, request, response, &gzipped);
    let data = data_of(&events, types::EXCHANGE_SEEN);
    assert_eq!(
        data["response_body"],
        json!({"encoding": "utf8", "data": "short", "truncated": false})
    );
}

const ORDERS: &str = "[[routes]]\nid = \"orders\"\nmatch = { path = \"/api/orders\" }\nmode = \"legacy\"\nevents = false\n[[routes.emit]]\ntype = \"shop.order.placed\"\nwhen = { methods = [\"POST\"], status = [201] }\ndata = { order_id = \"response:/id\", sku = \"request:/sku\", quantity = \"request:/quantity\", location = \"response_header:location\" }\n";

#[test]
fn emit_rules_fire_on_their_exchanges_only() {
    let s = setup(ORDERS);
    let post = || {
        Request::post("/api/orders")
            .body(r#"{"sku": "A-1", "quantity": 2}"#)
            .unwrap()
    };
    let created = Response::builder()
        .status(201)
        .header("location", "/api/orders/9")
        .body(())
        .unwrap();
    let events = exchange(&s, post(), created, br#"{"id": "9"}"#);
    assert_eq!(events.len(), 1, "events = false: no exchange event");
    assert_eq!(events[0].kind, "shop.order.placed");
    assert_eq!(events[0].subject.as_deref(), Some("orders"));
    assert_eq!(events[0].correlationid, "corr-1");
    assert_eq!(
        events[0].data,
        json!({"order_id": "9", "sku": "A-1", "quantity": 2, "location": "/api/orders/9"})
    );
    let conflict = Response::builder().status(409).body(()).unwrap();
    assert!(exchange(&s, post(), conflict, b"{}").is_empty());
    let get = Request::get("/api/orders").body("").unwrap();
    let ok = Response::builder().status(201).body(()).unwrap();
    assert!(exchange(&s, get, ok, b"{}").is_empty());
    let not_json = Response::builder()
        .status(201)
        .header("location", "/x")
        .body(())
        .unwrap();
    assert!(exchange(&s, post(), not_json, b"<html>").is_empty());
    let views = s.plans.rule_views();
    assert_eq!(views.len(), 1);
    assert_eq!((views[0].emitted, views[0].skipped.not_json), (1, 1));
}

#[test]
fn nothing_is_planned_when_nothing_would_be_published() {
    let s = setup(ORDERS);
    let orders = s.table.route("orders");
    assert!(s.plans.get(orders, &Method::POST, true).is_some());
    assert!(
        s.plans.get(orders, &Method::GET, true).is_none(),
        "events = false, no rule for GET"
    );
    assert!(s.plans.get(None, &Method::GET, true).is_some());
    assert!(
        s.plans.get(None, &Method::GET, false).is_none(),
        "[bus] exchanges = false"
    );
}

#[test]
fn a_new_canary_share_is_a_change() {
    let canary = |percent: u32| {
        from_toml_str(
            &format!("{HEAD}[upstreams.new]\nurl = \"http://127.0.0.1:2\"\n[[routes]]\nid = \"a\"\nmatch = {{ path = \"/a\" }}\nmode = \"canary\"\nextracted = \"new\"\ncanary = {{ percent = {percent} }}\n"),
            "t.toml",
        )
        .unwrap()
    };
    let (ten, fifty) = (canary(10), canary(50));
    assert!(mode_changes(ten.raw(), ten.raw()).is_empty());
    let changes = mode_changes(ten.raw(), fifty.raw());
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].from_percent, changes[0].to_percent),
        (Some(10.0), Some(50.0))
    );
    let events = reloaded_events(4, "admin", 1, changes, |_| None);
    assert_eq!(
        events[1].data,
        json!({"route": "a", "from": "canary", "to": "canary", "from_percent": 10.0, "to_percent": 50.0, "by": "admin", "reason": null})
    );
}

#[test]
fn config_and_shadow_events() {
    let before = from_toml_str(
        &format!("{HEAD}[[routes]]\nid = \"a\"\nmatch = {{ path = \"/a\" }}\nmode = \"legacy\"\n[[routes]]\nid = \"b\"\nmatch = {{ path = \"/b\" }}\nmode = \"legacy\"\n"),
        "t.toml",
    )
    .unwrap();
    let after = from_toml_str(
        &format!("{HEAD}[upstreams.new]\nurl = \"http://127.0.0.1:2\"\n[[routes]]\nid = \"a\"\nmatch = {{ path = \"/a\" }}\nmode = \"shadow\"\nextracted = \"new\"\n[[routes]]\nid = \"c\"\nmatch = {{ path = \"/c\" }}\nmode = \"legacy\"\n"),
        "t.toml",
    )
    .unwrap();
    let changes = mode_changes(before.raw(), after.raw());
    assert_eq!(
        changes,
        [ModeChange {
            route: "a".into(),
            from: "legacy".into(),
            to: "shadow".into(),
            from_percent: None,
            to_percent: None,
        }]
    );
    let events = reloaded_events(3, "file", 2, changes, |_| None);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, types::CONFIG_RELOADED);
    assert_eq!(
        events[0].data,
        json!({"generation": 3, "trigger": "file", "routes": 2, "changed": [{"route": "a", "from": "legacy", "to": "shadow"}]})
    );
    assert_eq!(events[1].kind, types::ROUTE_CHANGED);
    assert_eq!(
        events[1].data,
        json!({"route": "a", "from": "legacy", "to": "shadow", "by": "file", "reason": null})
    );
    assert_eq!(events[0].correlationid, events[1].correlationid);

    let mut record = crate::shadow::Record {
        route: "a".into(),
        correlation: "c-1".into(),
        method: "GET".into(),
        path: "/a?x".into(),
        at: String::new(),
        verdict: "skipped",
        reason: Some("queue_full"),
        differences: Vec::new(),
        total_differences: 0,
        latency: Default::default(),
        baseline_samples: 0,
        candidate_status: None,
    };
    let skipped = shadow_event(&record).unwrap();
    assert_eq!(skipped.kind, types::SHADOW_SKIPPED);
    assert_eq!(
        skipped.data,
        json!({"route": "a", "correlation": "c-1", "reason": "queue_full", "method": "GET", "path": "/a?x"})
    );
    record.reason = None;
    record.verdict = "regression";
    record.total_differences = 12;
    record.differences = (0..12)
        .map(|i| crate::shadow::summary::Entry {
            pointer: format!("/body/{i}"),
            legacy: Some(json!(i)),
            candidate: None,
            noise: false,
        })
        .collect();
    let compared = shadow_event(&record).unwrap();
    assert_eq!(compared.kind, types::SHADOW_COMPARED);
    assert_eq!(compared.correlationid, "c-1");
    let parsed: ShadowCompared = compared.data.parse().unwrap();
    assert_eq!(parsed.differences.len(), SHADOW_DIFFERENCES);
    assert_eq!((parsed.total, parsed.verdict.as_str()), (12, "regression"));
}
