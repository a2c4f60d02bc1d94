//! Tests of `compare` and `classify` through the public surface: the comparison table
//! (`table`), what differences show (here), and noise learning end to end (`noise`).

mod noise;
mod table;

use std::io::Write;

use http::{HeaderName, HeaderValue};
use serde_json::json;

use super::*;
use crate::config::DiffConfig;

// === fixtures ===

/// An answer under construction.
#[derive(Clone)]
struct Answer(Observed);

fn answer(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
    let mut headers = HeaderMap::new();
    if !content_type.is_empty() {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
    }
    Answer(Observed {
        status,
        headers,
        body: Bytes::from(body.into()),
    })
}

fn json(body: &str) -> Answer {
    answer(200, "application/json", body)
}

fn html(body: &str) -> Answer {
    answer(200, "text/html; charset=utf-8", body)
}

impl Answer {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.0.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    fn status(mut self, status: u16) -> Self {
        self.0.status = status;
        self
    }

    fn encoded(self, coding: &str, body: Vec<u8>) -> Self {
        let mut a = self.header("content-encoding", coding);
        a.0.body = Bytes::from(body);
        a
    }

    fn gzip(self) -> Self {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&self.0.body).unwrap();
        let body = e.finish().unwrap();
        self.encoded("gzip", body)
    }

    fn deflate(self) -> Self {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&self.0.body).unwrap();
        let body = e.finish().unwrap();
        self.encoded("deflate", body)
    }

    fn br(self) -> Self {
        let mut body = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut body, 4096, 5, 22);
            w.write_all(&self.0.body).unwrap();
        }
        self.encoded("br", body)
    }
}

/// Rules from a `diff = { … }` table written as TOML lines.
fn rules(toml_text: &str) -> DiffRules {
    let config: DiffConfig = toml::from_str(toml_text).unwrap();
    DiffRules::new(&config).unwrap()
}

fn run(legacy: &Answer, candidate: &Answer, rules_toml: &str) -> Comparison {
    compare(&legacy.0, &candidate.0, &rules(rules_toml))
}

// === what differences show ===

#[test]
fn missing_and_null_stay_distinct_in_json() {
    let got = run(&json(r#"{"a": null}"#), &json("{}"), "");
    let d = &got.differences[0];
    assert_eq!(
        (d.legacy.clone(), d.candidate.clone()),
        (Some(Value::Null), None)
    );
    assert_eq!(
        serde_json::to_value(d).unwrap(),
        json!({"pointer": "/body/a", "legacy": null})
    );
}

#[test]
fn values_are_shown() {
    let got = run(&json(r#"{"v": 1}"#), &json(r#"{"v": "1"}"#), "");
    assert_eq!(got.differences[0].legacy, Some(json!(1)));
    assert_eq!(got.differences[0].candidate, Some(json!("1")));
    let got = run(&json("{}"), &json("{}").status(502), "");
    assert_eq!(got.differences[0].candidate, Some(json!(502)));
}

#[test]
fn html_difference_shows_the_changed_text_in_context() {
    let page = "<html><body><h1>Basket</h1><p>Total: <b>10.00 EUR</b></p></body></html>";
    let got = run(&html(page), &html(&page.replace("10.00", "12.00")), "");
    let d = &got.differences[0];
    let (l, c) = (d.legacy.as_ref().unwrap(), d.candidate.as_ref().unwrap());
    assert!(l.as_str().unwrap().contains("Total:<b>10.00 EUR"), "{l}");
    assert!(c.as_str().unwrap().contains("Total:<b>12.00 EUR"), "{c}");
}

#[test]
fn cookie_values_are_never_shown() {
    let got = run(
        &json("{}").header("set-cookie", "sid=secret1; Path=/"),
        &json("{}").header("set-cookie", "token=secret2; Path=/"),
        "",
    );
    let shown = serde_json::to_string(&got.differences).unwrap();
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("sid=…; Path=/"), "{shown}");
}

#[test]
fn undecodable_body_says_why() {
    let got = run(
        &json(r#"{"a": 1}"#),
        &json(r#"{"a": 1}"#).header("content-encoding", "gzip"),
        "",
    );
    let candidate = got.differences[0].candidate.as_ref().unwrap();
    assert!(
        candidate["error"].as_str().unwrap().contains("gzip"),
        "{candidate}"
    );
    assert_eq!(got.differences[0].legacy.as_ref().unwrap()["len"], 8);
}

#[test]
fn invalid_json_is_reported_as_such() {
    let got = run(&json(r#"{"a": 1}"#), &json(r#"{"a": 1"#), "");
    let d = &got.differences[0];
    assert!(d.legacy.as_ref().unwrap().get("error").is_none());
    let candidate = d.candidate.as_ref().unwrap();
    assert!(
        candidate["error"].as_str().unwrap().starts_with("not JSON"),
        "{candidate}"
    );
    assert_eq!(candidate["excerpt"], r#"{"a": 1"#);
}

#[test]
fn over_max_body_says_so() {
    let big = |c: &str| json(&format!(r#"{{"a": "{}"}}"#, c.repeat(100)));
    let got = run(&big("x"), &big("y"), "max_body = 64");
    let legacy = got.differences[0].legacy.as_ref().unwrap();
    assert_eq!(legacy["len"], 109);
    assert!(
        legacy["note"].as_str().unwrap().contains("max_body"),
        "{legacy}"
    );
}

#[test]
fn cap_keeps_the_first_and_counts_all() {
    let body = |v: u32| {
        let fields: Vec<String> = (0..100).map(|i| format!("\"k{i:03}\": {v}")).collect();
        json(&format!("{{{}}}", fields.join(", ")))
    };
    let got = run(&body(1), &body(2), "max_differences = 5");
    assert_eq!(got.total, 100);
    let pointers: Vec<&str> = got.differences.iter().map(|d| d.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/body/k000",
            "/body/k001",
            "/body/k002",
            "/body/k003",
            "/body/k004"
        ]
    );
}

#[test]
fn ignored_differences_are_counted_apart() {
    let got = run(
        &json("{}"),
        &json("{}").status(201),
        r#"ignore = ["/status"]"#,
    );
    assert_eq!((got.total, got.ignored), (0, 1));
    assert!(got.differences.is_empty());
}

#[test]
fn large_values_are_summarised() {
    let items: Vec<u32> = (0..1000).collect();
    let legacy = json(&json!({ "items": items }).to_string());
    let got = run(&legacy, &json("{}"), "");
    let shown = got.differences[0].legacy.as_ref().unwrap();
    assert_eq!(shown["summary"], "array of 1000 items");
}
