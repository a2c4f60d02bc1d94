//! The comparison table, and the noise-learning story end to end.

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

// === the table ===

/// One row: two answers, the rules, and the pointers expected (kept, in order).
struct Case {
    name: &'static str,
    legacy: Answer,
    candidate: Answer,
    rules: &'static str,
    pointers: &'static [&'static str],
}

fn case(
    name: &'static str,
    legacy: Answer,
    candidate: Answer,
    rules: &'static str,
    pointers: &'static [&'static str],
) -> Case {
    Case {
        name,
        legacy,
        candidate,
        rules,
        pointers,
    }
}

fn cases() -> Vec<Case> {
    let page = r#"<!DOCTYPE html><html><body><div id="a" class="c">Hello <b>world</b></div></body></html>"#;
    let page_reformatted = "<!doctype html>\n<html>\n  <body>\n    <div class='c'   id=a>\n      Hello\n      <B>world</B>\n    </div>\n  </body>\n</html>\n";
    let items = r#"{"items": [{"id": 1, "price": 10, "updated_at": "a"}, {"id": 2, "price": 20, "updated_at": "b"}]}"#;
    vec![
        case("identical JSON", json(r#"{"a": 1}"#), json(r#"{"a": 1}"#), "", &[]),
        case(
            "object keys reordered",
            json(r#"{"a": 1, "b": {"x": true, "y": null}}"#),
            json(r#"{"b": {"y": null, "x": true}, "a": 1}"#),
            "",
            &[],
        ),
        case(
            "array order matters by default",
            json(r#"{"a": [1, 2]}"#),
            json(r#"{"a": [2, 1]}"#),
            "",
            &["/body/a/0", "/body/a/1"],
        ),
        case(
            "array order ignored where unordered",
            json(r#"{"items": [1, 2, 3]}"#),
            json(r#"{"items": [3, 1, 2]}"#),
            r#"unordered = ["/body/items"]"#,
            &[],
        ),
        case(
            "unordered: a missing element is reported at its index",
            json(r#"{"items": [1, 2, 3]}"#),
            json(r#"{"items": [3, 1]}"#),
            r#"unordered = ["/body/items"]"#,
            &["/body/items/1"],
        ),
        case(
            "unordered is a multiset",
            json(r#"{"items": [1, 1, 2]}"#),
            json(r#"{"items": [1, 2, 2]}"#),
            r#"unordered = ["/body/items"]"#,
            &["/body/items/1", "/body/items/2"],
        ),
        case(
            "unordered objects match with ignored fields left out",
            json(items),
            json(r#"{"items": [{"id": 2, "price": 20, "updated_at": "y"}, {"updated_at": "x", "price": 10, "id": 1}]}"#),
            r#"unordered = ["/body/items"]
               ignore = ["/body/items/*/updated_at"]"#,
            &[],
        ),
        case(
            "unordered root array",
            json("[1, 2]"),
            json("[2, 1]"),
            r#"unordered = ["/body"]"#,
            &[],
        ),
        case(
            "nested arrays by index",
            json(r#"{"m": [[1, 2], [3, 4]]}"#),
            json(r#"{"m": [[1, 2], [3, 5]]}"#),
            "",
            &["/body/m/1/1"],
        ),
        case(
            "nested arrays unordered at both levels",
            json(r#"{"m": [[1, 2], [3, 4]]}"#),
            json(r#"{"m": [[4, 3], [2, 1]]}"#),
            r#"unordered = ["/body/m", "/body/m/*"]"#,
            &[],
        ),
        case(
            "relative tolerance: within",
            json(r#"{"n": 100.0}"#),
            json(r#"{"n": 100.00001}"#),
            "relative_tolerance = 1e-6",
            &[],
        ),
        case(
            "relative tolerance: outside",
            json(r#"{"n": 100}"#),
            json(r#"{"n": 101}"#),
            "relative_tolerance = 1e-6",
            &["/body/n"],
        ),
        case(
            "absolute tolerance: within",
            json(r#"{"n": 0.30000000000000004}"#),
            json(r#"{"n": 0.3}"#),
            "absolute_tolerance = 1e-9",
            &[],
        ),
        case(
            "no tolerance: floating noise is a difference",
            json(r#"{"n": 0.30000000000000004}"#),
            json(r#"{"n": 0.3}"#),
            "",
            &["/body/n"],
        ),
        case(
            "numbers by value: 1 equals 1.0",
            json(r#"{"n": 1}"#),
            json(r#"{"n": 1.0}"#),
            "",
            &[],
        ),
        case(
            "large integers are not rounded through f64",
            json(r#"{"n": 9007199254740993}"#),
            json(r#"{"n": 9007199254740992}"#),
            "",
            &["/body/n"],
        ),
        case(
            "ignored pointer with *",
            json(items),
            json(&items.replace("\"a\"", "\"c\"").replace("\"b\"", "\"d\"")),
            r#"ignore = ["/body/items/*/updated_at"]"#,
            &[],
        ),
        case(
            "ignore does not hide a neighbour",
            json(items),
            json(&items.replace("\"a\"", "\"c\"").replace("10", "11")),
            r#"ignore = ["/body/items/*/updated_at"]"#,
            &["/body/items/0/price"],
        ),
        case(
            "an ignored subtree",
            json(r#"{"meta": {"host": "a", "took": 3}, "v": 1}"#),
            json(r#"{"meta": {"host": "b"}, "v": 1}"#),
            r#"ignore = ["/body/meta"]"#,
            &[],
        ),
        case(
            "escaped segment: slash",
            json(r#"{"a/b": 1}"#),
            json(r#"{"a/b": 2}"#),
            "",
            &["/body/a~1b"],
        ),
        case(
            "escaped segment: tilde",
            json(r#"{"m~n": 1}"#),
            json(r#"{"m~n": 2}"#),
            "",
            &["/body/m~0n"],
        ),
        case(
            "ignore an escaped segment",
            json(r#"{"a/b": 1, "m~n": 1}"#),
            json(r#"{"a/b": 2, "m~n": 2}"#),
            r#"ignore = ["/body/a~1b", "/body/m~0n"]"#,
            &[],
        ),
        case(
            "type change",
            json(r#"{"v": 1}"#),
            json(r#"{"v": "1"}"#),
            "",
            &["/body/v"],
        ),
        case(
            "object to array",
            json(r#"{"v": {}}"#),
            json(r#"{"v": []}"#),
            "",
            &["/body/v"],
        ),
        case(
            "missing vs null",
            json(r#"{"a": null}"#),
            json("{}"),
            "",
            &["/body/a"],
        ),
        case(
            "null vs missing",
            json("{}"),
            json(r#"{"a": null}"#),
            "",
            &["/body/a"],
        ),
        case(
            "timestamps within tolerance",
            json(r#"{"at": "2026-01-01T00:00:00Z"}"#),
            json(r#"{"at": "2026-01-01T00:00:01.5Z"}"#),
            r#"timestamp_tolerance = "2s""#,
            &[],
        ),
        case(
            "timestamps outside tolerance",
            json(r#"{"at": "2026-01-01T00:00:00Z"}"#),
            json(r#"{"at": "2026-01-01T00:00:03Z"}"#),
            r#"timestamp_tolerance = "2s""#,
            &["/body/at"],
        ),
        case(
            "timestamps as instants: same moment, other offset",
            json(r#"{"at": "2026-01-01T01:00:00+01:00"}"#),
            json(r#"{"at": "2026-01-01T00:00:00Z"}"#),
            "",
            &[],
        ),
        case(
            "gzip vs identity, same content",
            json(r#"{"a": [1, 2, 3]}"#).gzip(),
            json(r#"{"a": [1, 2, 3]}"#),
            "",
            &[],
        ),
        case(
            "br vs identity, same content",
            json(r#"{"a": "brotli"}"#),
            json(r#"{"a": "brotli"}"#).br(),
            "",
            &[],
        ),
        case(
            "deflate vs gzip, same content",
            html(page).deflate(),
            html(page).gzip(),
            "",
            &[],
        ),
        case(
            "gzip with other content is compared decoded",
            json(r#"{"a": 1, "b": 2}"#).gzip(),
            json(r#"{"a": 1, "b": 3}"#).gzip(),
            "",
            &["/body/b"],
        ),
        case(
            "undecodable gzip is a difference",
            json(r#"{"a": 1}"#),
            json(r#"{"a": 1}"#).header("content-encoding", "gzip"),
            "",
            &["/body"],
        ),
        case(
            "the same undecodable body on both sides",
            json("not gzip").header("content-encoding", "gzip"),
            json("not gzip").header("content-encoding", "gzip"),
            "",
            &[],
        ),
        case(
            "HTML whitespace and attribute order",
            html(page),
            html(page_reformatted),
            "",
            &[],
        ),
        case(
            "HTML text change",
            html(page),
            html(&page.replace("world", "there")),
            "",
            &["/body"],
        ),
        case(
            "HTML comments ignored",
            html(page),
            html(&page.replace("<body>", "<body><!-- rendered by v2 -->")),
            "",
            &[],
        ),
        case(
            "HTML attribute value change",
            html(page),
            html(&page.replace("class=\"c\"", "class=\"d\"")),
            "",
            &["/body"],
        ),
        case(
            "status only",
            json("{}"),
            json("{}").status(500),
            "",
            &["/status"],
        ),
        case(
            "content-type only",
            json("{}"),
            json("{}").header("content-type", "application/problem+json"),
            "",
            &["/headers/content-type"],
        ),
        case(
            "content-type: case and quoting do not matter",
            answer(200, "application/json; charset=utf-8", "{}"),
            answer(200, "Application/JSON;charset=\"UTF-8\"", "{}"),
            "",
            &[],
        ),
        case(
            "set-cookie: value change is equal",
            json("{}").header("set-cookie", "sid=abc; Path=/; HttpOnly"),
            json("{}").header("set-cookie", "sid=xyz; Path=/; HttpOnly"),
            "",
            &[],
        ),
        case(
            "set-cookie: name change",
            json("{}").header("set-cookie", "sid=abc; Path=/"),
            json("{}").header("set-cookie", "session=abc; Path=/"),
            "",
            &["/headers/set-cookie"],
        ),
        case(
            "set-cookie: attribute dropped",
            json("{}").header("set-cookie", "sid=abc; Path=/; HttpOnly"),
            json("{}").header("set-cookie", "sid=abc; Path=/"),
            "",
            &["/headers/set-cookie"],
        ),
        case(
            "an unlisted header is not compared",
            json("{}").header("x-request-id", "1"),
            json("{}").header("x-request-id", "2"),
            "",
            &[],
        ),
        case(
            "a listed header missing on one side",
            json("{}").header("location", "/a").header("etag", "1"),
            json("{}").header("etag", "2"),
            r#"headers = ["location", "ETag"]"#,
            &["/headers/location", "/headers/etag"],
        ),
        case(
            "ignored headers",
            json("{}").header("cache-control", "no-store"),
            json("{}").header("cache-control", "max-age=60"),
            r#"ignore = ["/headers/*"]"#,
            &[],
        ),
        case(
            "binary bodies by hash",
            answer(200, "image/png", vec![0x89, b'P', b'N', b'G', 0, 1]),
            answer(200, "image/png", vec![0x89, b'P', b'N', b'G', 0, 2]),
            "",
            &["/body"],
        ),
        case(
            "binary bodies, same bytes",
            answer(200, "application/octet-stream", vec![0, 255, 7]),
            answer(200, "application/octet-stream", vec![0, 255, 7]),
            "",
            &[],
        ),
        case(
            "empty bodies",
            answer(204, "", ""),
            answer(204, "", ""),
            "",
            &[],
        ),
        case(
            "empty vs JSON",
            json(""),
            json("{}"),
            "",
            &["/body"],
        ),
        case(
            "not JSON under a JSON content type",
            json("<html>oops</html>"),
            json("<html>oh no</html>"),
            "",
            &["/body"],
        ),
        case(
            "text bodies",
            answer(200, "text/plain", "line one\nline two"),
            answer(200, "text/plain", "line one\nline 2"),
            "",
            &["/body"],
        ),
        case(
            "kinds differ: compared as bytes",
            json("{}"),
            html("<p>{}</p>"),
            "",
            &["/headers/content-type", "/body"],
        ),
        case(
            "over max_body: equal by hash",
            json(&format!(r#"{{"a": "{}"}}"#, "x".repeat(100))).gzip(),
            json(&format!(r#"{{"a": "{}"}}"#, "x".repeat(100))),
            "max_body = 64",
            &[],
        ),
        case(
            "over max_body: different by hash",
            json(&format!(r#"{{"a": "{}"}}"#, "x".repeat(100))),
            json(&format!(r#"{{"a": "{}"}}"#, "y".repeat(100))),
            "max_body = 64",
            &["/body"],
        ),
    ]
}

#[test]
fn comparison_table() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = run(&case.legacy, &case.candidate, case.rules);
        let pointers: Vec<&str> = got.differences.iter().map(|d| d.pointer.as_str()).collect();
        if pointers != case.pointers || got.total != case.pointers.len() {
            failures.push(format!(
                "{}: expected {:?}, got {:?} (total {})",
                case.name, case.pointers, got.differences, got.total
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// === what differences show ===

#[test]
fn missing_and_null_stay_distinct_in_json() {
    let got = run(&json(r#"{"a": null}"#), &json("{}"), "");
    let d = &got.differences[0];
    assert_eq!((d.legacy.clone(), d.candidate.clone()), (Some(Value::Null), None));
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
    assert!(candidate["error"].as_str().unwrap().contains("gzip"), "{candidate}");
    assert_eq!(got.differences[0].legacy.as_ref().unwrap()["len"], 8);
}

#[test]
fn invalid_json_is_reported_as_such() {
    let got = run(&json(r#"{"a": 1}"#), &json(r#"{"a": 1"#), "");
    let d = &got.differences[0];
    assert!(d.legacy.as_ref().unwrap().get("error").is_none());
    let candidate = d.candidate.as_ref().unwrap();
    assert!(candidate["error"].as_str().unwrap().starts_with("not JSON"), "{candidate}");
    assert_eq!(candidate["excerpt"], r#"{"a": 1"#);
}

#[test]
fn over_max_body_says_so() {
    let big = |c: &str| json(&format!(r#"{{"a": "{}"}}"#, c.repeat(100)));
    let got = run(&big("x"), &big("y"), "max_body = 64");
    let legacy = got.differences[0].legacy.as_ref().unwrap();
    assert_eq!(legacy["len"], 109);
    assert!(legacy["note"].as_str().unwrap().contains("max_body"), "{legacy}");
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
        ["/body/k000", "/body/k001", "/body/k002", "/body/k003", "/body/k004"]
    );
}

#[test]
fn ignored_differences_are_counted_apart() {
    let got = run(&json("{}"), &json("{}").status(201), r#"ignore = ["/status"]"#);
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

// === noise learning ===

/// The legacy answer to `GET /api/basket/7`: a fresh timestamp and request id every time,
/// and a per-item trace id.
fn basket(seq: u32, second_price: u32) -> Answer {
    let body = json!({
        "generated_at": format!("2026-03-01T10:00:{:02}.{:03}Z", seq % 60, seq * 7 % 1000),
        "request_id": format!("req-{}", seq * 7919),
        "items": [
            {"sku": "A", "price": 10, "trace": format!("t{seq}a")},
            {"sku": "B", "price": second_price, "trace": format!("t{seq}b")},
        ],
        "total": 30,
    });
    json(&body.to_string()).header("set-cookie", &format!("sid={seq}; Path=/"))
}

#[test]
fn learned_noise_separates_timestamps_and_ids_from_a_real_bug() {
    let rules = DiffRules::default();
    let mut baseline = NoiseBaseline::new();

    // Before learning, every difference is a regression.
    let early = compare(&basket(1, 20).0, &basket(2, 20).0, &rules);
    assert_eq!(classify(&early, &baseline).verdict, Verdict::Regression);

    for seq in [10, 20, 30] {
        assert!(baseline.learn(&basket(seq, 20).0, &basket(seq + 1, 20).0, &rules));
    }
    assert_eq!(baseline.samples(), 3);

    // A correct candidate: only noise.
    let fine = compare(&basket(40, 20).0, &basket(41, 20).0, &rules);
    let verdict = classify(&fine, &baseline);
    assert_eq!(verdict.verdict, Verdict::Noise, "{verdict:?}");
    assert_eq!(verdict.noise.len(), fine.total);

    // A candidate that gets the second price wrong.
    let buggy = compare(&basket(50, 20).0, &basket(51, 21).0, &rules);
    let verdict = classify(&buggy, &baseline);
    assert_eq!(verdict.verdict, Verdict::Regression);
    let regressions: Vec<&str> = verdict.regressions.iter().map(|d| d.pointer.as_str()).collect();
    assert_eq!(regressions, ["/body/items/1/price"]);
    let mut noise: Vec<&str> = verdict.noise.iter().map(|d| d.pointer.as_str()).collect();
    noise.sort_unstable();
    assert_eq!(
        noise,
        [
            "/body/generated_at",
            "/body/items/0/trace",
            "/body/items/1/trace",
            "/body/request_id"
        ]
    );
    assert_eq!(verdict.samples, 3);
    assert_eq!(Verdict::Regression.as_str(), "regression");
}

#[test]
fn noise_learned_at_one_index_covers_every_index() {
    let rules = DiffRules::default();
    let mut baseline = NoiseBaseline::new();
    let list = |v: &[&str]| json(&json!({ "rows": v.iter().map(|s| json!({"at": s})).collect::<Vec<_>>() }).to_string());
    baseline.learn(&list(&["a", "x"]).0, &list(&["b", "x"]).0, &rules);
    let got = compare(&list(&["a", "x"]).0, &list(&["a", "y"]).0, &rules);
    assert_eq!(classify(&got, &baseline).verdict, Verdict::Noise);
}

#[test]
fn baseline_refuses_pairs_with_different_statuses_and_whole_bodies() {
    let rules = DiffRules::default();
    let mut baseline = NoiseBaseline::new();
    assert!(!baseline.learn(&json(r#"{"a": 1}"#).0, &json("{}").status(503).0, &rules));
    assert_eq!(baseline.samples(), 0);
    // An HTML page that differs teaches nothing that would cover all body differences.
    assert!(baseline.learn(&html("<p>1</p>").0, &html("<p>2</p>").0, &rules));
    let got = compare(&html("<p>1</p>").0, &html("<p>3</p>").0, &rules);
    assert_eq!(classify(&got, &baseline).verdict, Verdict::Regression);
}

#[test]
fn baseline_is_bounded() {
    let rules = rules("max_differences = 10000");
    let mut baseline = NoiseBaseline::new();
    for round in 0..4 {
        let keys = |v: u32| {
            let map: serde_json::Map<String, Value> = (0..200)
                .map(|i| (format!("id{}", round * 1000 + i), json!(v)))
                .collect();
            json(&Value::Object(map).to_string())
        };
        baseline.learn(&keys(1).0, &keys(2).0, &rules);
    }
    assert_eq!(baseline.shapes.len(), NoiseBaseline::LIMIT);
    assert_eq!(baseline.samples(), 4);
}

#[test]
fn verdicts_cover_unkept_differences_and_ignored_ones() {
    let rules_capped = rules("max_differences = 1");
    let mut baseline = NoiseBaseline::new();
    baseline.learn(&json(r#"{"a": 1}"#).0, &json(r#"{"a": 2}"#).0, &rules_capped);
    // `a` is noise and kept; `b` is not kept but is a regression.
    let got = compare(
        &json(r#"{"a": 1, "b": 1}"#).0,
        &json(r#"{"a": 2, "b": 2}"#).0,
        &rules_capped,
    );
    assert_eq!((got.differences.len(), got.total), (1, 2));
    let verdict = classify(&got, &baseline);
    assert_eq!(verdict.verdict, Verdict::Regression);
    assert!(verdict.regressions.is_empty());

    let equal = compare(&json("{}").0, &json("{}").0, &rules_capped);
    assert_eq!(classify(&equal, &baseline).verdict, Verdict::Equal);
    let ignored = run(&json("{}"), &json("{}").status(201), r#"ignore = ["/status"]"#);
    assert_eq!(classify(&ignored, &baseline).verdict, Verdict::Noise);
}
