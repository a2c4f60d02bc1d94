use std::io::Write;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use super::*;
use crate::config::{EmitWhen, StatusMatch};

fn rule(data: &[(&str, &str)], status: Vec<StatusMatch>) -> EmitConfig {
    EmitConfig {
        kind: "shop.order.placed".into(),
        when: EmitWhen {
            methods: vec!["POST".into()],
            status,
        },
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn compile(data: &[(&str, &str)]) -> Rules {
    Rules::compile(&[rule(data, vec![StatusMatch::Code(201)])], &["sku"], None).unwrap()
}

struct Exchange {
    params: Vec<(String, String)>,
    request_headers: HeaderMap,
    response_headers: HeaderMap,
    request: Option<Vec<u8>>,
    response: Option<Vec<u8>>,
}

impl Exchange {
    fn new(request: &str, response: &str) -> Self {
        let mut request_headers = HeaderMap::new();
        request_headers.insert("x-request-id", HeaderValue::from_static("req-1"));
        let mut response_headers = HeaderMap::new();
        response_headers.insert("location", HeaderValue::from_static("/api/orders/7"));
        Self {
            params: vec![("sku".into(), "café".into())],
            request_headers,
            response_headers,
            request: Some(request.as_bytes().to_vec()),
            response: Some(response.as_bytes().to_vec()),
        }
    }

    fn run(&self, rules: &Rules) -> Result<serde_json::Value, Skip> {
        fn body(b: &Option<Vec<u8>>) -> BodySeen<'_> {
            match b {
                Some(bytes) => BodySeen::Complete(bytes),
                None => BodySeen::Unavailable,
            }
        }
        let from = Extractor::new(Seen {
            params: &self.params,
            request_headers: &self.request_headers,
            response_headers: &self.response_headers,
            request_body: body(&self.request),
            response_body: body(&self.response),
        });
        let rule = rules.iter().next().unwrap();
        rule.extract(&from)
    }
}

#[test]
fn every_source_and_nested_and_escaped_pointers() {
    let rules = compile(&[
        ("order_id", "response:/id"),
        ("line", "response:/lines/0/a~1b"),
        ("sku", "request:/sku"),
        ("quantity", "request:/quantity"),
        ("route_param", "param:sku"),
        ("request_id", "header:x-request-id"),
        ("location", "response_header:location"),
    ]);
    let exchange = Exchange::new(
        r#"{"sku": "A-1", "quantity": 2}"#,
        r#"{"id": "7", "lines": [{"a/b": {"deep": [1]}}]}"#,
    );
    assert_eq!(
        exchange.run(&rules).unwrap(),
        json!({
            "order_id": "7",
            "line": {"deep": [1]},
            "sku": "A-1",
            "quantity": 2,
            "route_param": "café",
            "request_id": "req-1",
            "location": "/api/orders/7",
        })
    );
    let view = &rules.views("orders")[0];
    assert_eq!((view.emitted, view.kind.as_str()), (1, "shop.order.placed"));
}

#[test]
fn a_segment_of_a_redirect_location_is_a_field() {
    // A form POST answered 303 with only `Location`: the order id is its last segment.
    let rules = compile(&[("order_id", "response_header:location:/api/orders/{id}")]);
    let mut exchange = Exchange::new("sku=A&quantity=1", "<html>see other</html>");
    assert_eq!(exchange.run(&rules).unwrap(), json!({"order_id": "7"}));
    exchange
        .response_headers
        .insert("location", HeaderValue::from_static("/api/carts/s-1"));
    assert_eq!(exchange.run(&rules), Err(Skip::MissingField));
    let view = &rules.views("page-cart")[0];
    assert_eq!((view.emitted, view.skipped.missing_field), (1, 1));
}

#[test]
fn missing_fields_and_bad_bodies_are_counted_skips() {
    let rules = compile(&[("order_id", "response:/id"), ("sku", "request:/sku")]);
    let absent = Exchange::new(r#"{"sku": "A"}"#, r#"{"other": 1}"#);
    assert_eq!(absent.run(&rules), Err(Skip::MissingField));
    let html = Exchange::new(r#"{"sku": "A"}"#, "<html>oops</html>");
    assert_eq!(html.run(&rules), Err(Skip::NotJson));
    let mut cut = Exchange::new(r#"{"sku": "A"}"#, r#"{"id": 1}"#);
    cut.response = None;
    assert_eq!(cut.run(&rules), Err(Skip::BodyUnavailable));
    let mut header = Exchange::new("{}", "{}");
    header.request_headers.clear();
    let by_header = compile(&[("id", "header:x-request-id")]);
    assert_eq!(header.run(&by_header), Err(Skip::MissingField));
    let view = &rules.views("orders")[0];
    assert_eq!(view.emitted, 0);
    assert_eq!(
        (
            view.skipped.missing_field,
            view.skipped.not_json,
            view.skipped.body_unavailable
        ),
        (1, 1, 1)
    );
}

#[test]
fn gzip_response_is_decoded() {
    let rules = compile(&[("order_id", "response:/id")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(br#"{"id": "z9"}"#).unwrap();
    let mut exchange = Exchange::new("{}", "");
    exchange.response = Some(gz.finish().unwrap());
    exchange
        .response_headers
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    assert_eq!(exchange.run(&rules).unwrap(), json!({"order_id": "z9"}));
    exchange
        .response_headers
        .insert("content-encoding", HeaderValue::from_static("zstd"));
    assert_eq!(exchange.run(&rules), Err(Skip::BodyUnavailable));
}

#[test]
fn methods_and_status_codes_and_classes() {
    let classes = vec![StatusMatch::Class("2xx".into()), StatusMatch::Code(409)];
    let rules = Rules::compile(&[rule(&[], classes)], &[], None).unwrap();
    let r = rules.iter().next().unwrap();
    assert!(r.fires(&Method::POST, StatusCode::CREATED));
    assert!(r.fires(&Method::POST, StatusCode::NO_CONTENT));
    assert!(r.fires(&Method::POST, StatusCode::CONFLICT));
    assert!(!r.fires(&Method::POST, StatusCode::NOT_FOUND));
    assert!(!r.fires(&Method::GET, StatusCode::CREATED));
    assert!(!r.wants_method(&Method::GET));
    // No status listed: any 2xx.
    let any = Rules::compile(&[rule(&[], Vec::new())], &[], None).unwrap();
    let r = any.iter().next().unwrap();
    assert!(r.fires(&Method::POST, StatusCode::OK));
    assert!(!r.fires(&Method::POST, StatusCode::FOUND));
}

#[test]
fn bad_rules_name_their_key() {
    let mut bad = rule(
        &[
            ("a", "body:/x"),
            ("b", "response:id"),
            ("c", "request:/a~2"),
            ("d", "param:id"),
            ("e", "header:cookie"),
            ("f", "header:bad header"),
            ("g", "nothing"),
            ("h", "response_header:location:/orders"),
            ("bad name", "param:sku"),
        ],
        vec![
            StatusMatch::Code(42),
            StatusMatch::Class("2yy".into()),
            StatusMatch::Class("201".into()),
        ],
    );
    bad.kind = "Shop Order".into();
    bad.when.methods = vec!["post".into(), "P OST".into()];
    let problems = Rules::compile(&[bad], &["sku"], None).unwrap_err();
    let keys: Vec<RuleKey> = problems.iter().map(|p| p.at.clone()).collect();
    assert_eq!(
        keys,
        [
            RuleKey::Type,
            RuleKey::Method(0),
            RuleKey::Method(1),
            RuleKey::Status(0),
            RuleKey::Status(1),
            RuleKey::Data("a".into()),
            RuleKey::Data("b".into()),
            RuleKey::Data("bad name".into()),
            RuleKey::Data("c".into()),
            RuleKey::Data("d".into()),
            RuleKey::Data("e".into()),
            RuleKey::Data("f".into()),
            RuleKey::Data("g".into()),
            RuleKey::Data("h".into()),
        ],
        "{problems:#?}"
    );
    let reserved = EmitConfig {
        kind: "strangler.exchange.seen.v1".into(),
        ..rule(&[], Vec::new())
    };
    assert!(Rules::compile(&[reserved], &[], None).is_err());
}

#[test]
fn tallies_survive_recompiling_an_unchanged_rule() {
    let config = [rule(&[("id", "response:/id")], Vec::new())];
    let first = Rules::compile(&config, &[], None).unwrap();
    let exchange = Exchange::new("{}", r#"{"id": 1}"#);
    exchange.run(&first).unwrap();
    let second = Rules::compile(&config, &[], Some(&first)).unwrap();
    assert_eq!(second.views("r")[0].emitted, 1);
}
