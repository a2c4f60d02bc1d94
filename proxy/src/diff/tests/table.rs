//! The comparison table: two answers, the rules, and the pointers expected.

use super::*;

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
        case(
            "identical JSON",
            json(r#"{"a": 1}"#),
            json(r#"{"a": 1}"#),
            "",
            &[],
        ),
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
            json(
                r#"{"items": [{"id": 2, "price": 20, "updated_at": "y"}, {"updated_at": "x", "price": 10, "id": 1}]}"#,
            ),
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
        case("empty vs JSON", json(""), json("{}"), "", &["/body"]),
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
