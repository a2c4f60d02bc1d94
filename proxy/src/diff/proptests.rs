//! Properties of `compare` over generated JSON and arbitrary bytes.

use std::io::Write;

use http::HeaderValue;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z/~ ]{0,6}".prop_map(Value::String),
        (0u32..86_400).prop_map(|s| Value::String(format!(
            "2026-01-01T{:02}:{:02}:{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        ))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z/~]{0,3}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn observed(value: &Value) -> Observed {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Observed {
        status: 200,
        headers,
        body: Bytes::from(value.to_string()),
    }
}

/// Every node's path, as JSON pointer segments (unescaped).
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    let children: Vec<(String, &Value)> = match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => Vec::new(),
    };
    for (segment, child) in children {
        prefix.push(segment);
        paths(child, prefix, out);
        prefix.pop();
    }
}

fn node_mut<'v>(value: &'v mut Value, path: &[String]) -> &'v mut Value {
    path.iter().fold(value, |v, segment| match v {
        Value::Array(items) => &mut items[segment.parse::<usize>().unwrap()],
        Value::Object(map) => map.get_mut(segment).unwrap(),
        _ => unreachable!(),
    })
}

/// The pointer a test expects, escaped independently of the code under test.
fn expected_pointer(path: &[String]) -> String {
    let mut out = String::from("/body");
    for segment in path {
        out.push('/');
        out.push_str(&segment.replace('~', "~0").replace('/', "~1"));
    }
    out
}

fn rule_sets() -> Vec<DiffRules> {
    let config = crate::config::DiffConfig {
        unordered: vec!["/body".into(), "/body/*".into()],
        relative_tolerance: 1e-3,
        timestamp_tolerance: std::time::Duration::from_secs(30),
        max_differences: 3,
        ..Default::default()
    };
    vec![DiffRules::default(), DiffRules::new(&config).unwrap()]
}

proptest! {
    #[test]
    fn a_value_equals_itself(v in value()) {
        for rules in rule_sets() {
            let got = compare(&observed(&v), &observed(&v.clone()), &rules);
            prop_assert_eq!(got.total, 0, "{:?}", got.differences);
        }
    }

    #[test]
    fn an_injected_change_is_reported_exactly_there(v in value(), pick in any::<Index>()) {
        let mut all = Vec::new();
        paths(&v, &mut Vec::new(), &mut all);
        let path = pick.get(&all).clone();
        let mut changed = v.clone();
        let node = node_mut(&mut changed, &path);
        *node = match node {
            Value::String(s) => Value::String(format!("{s}!")),
            _ => Value::String("!".into()),
        };
        let got = compare(&observed(&v), &observed(&changed), &DiffRules::default());
        prop_assert_eq!(got.total, 1, "{:?}", got.differences);
        prop_assert_eq!(&got.differences[0].pointer, &expected_pointer(&path));
    }

    #[test]
    fn the_count_is_symmetric(a in value(), b in value()) {
        for rules in rule_sets() {
            let ab = compare(&observed(&a), &observed(&b), &rules);
            let ba = compare(&observed(&b), &observed(&a), &rules);
            prop_assert_eq!(ab.total, ba.total);
            prop_assert_eq!(ab.differences.len(), ba.differences.len());
        }
    }

    #[test]
    fn gzip_is_transparent(v in value()) {
        let plain = observed(&v);
        let mut zipped = plain.clone();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&plain.body).unwrap();
        zipped.body = Bytes::from(e.finish().unwrap());
        zipped.headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        prop_assert_eq!(compare(&plain, &zipped, &DiffRules::default()).total, 0);
    }

    #[test]
    fn never_panics_on_arbitrary_answers(
        a in prop::collection::vec(any::<u8>(), 0..300),
        b in prop::collection::vec(any::<u8>(), 0..300),
        types in (0usize..7, 0usize..7),
        codings in (0usize..5, 0usize..5),
        text in "\\PC{0,200}",
    ) {
        const TYPES: [&str; 7] = [
            "application/json", "text/html", "text/plain", "image/png",
            "application/vnd.x+json; charset=latin1", ";;;", "",
        ];
        const CODINGS: [&str; 5] = ["", "gzip", "br", "deflate", "gzip, br"];
        let answer = |body: Vec<u8>, t: usize, c: usize| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(TYPES[t]));
            if !CODINGS[c].is_empty() {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(CODINGS[c]));
            }
            Observed { status: 200, headers, body: Bytes::from(body) }
        };
        for rules in rule_sets() {
            let _ = compare(&answer(a.clone(), types.0, codings.0), &answer(b.clone(), types.1, codings.1), &rules);
            let _ = compare(
                &answer(text.clone().into_bytes(), 1, 0),
                &answer(a.clone(), 1, 0),
                &rules,
            );
        }
        let _ = html::normalise(&text);
    }
}
