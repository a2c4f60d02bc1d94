//! `Table::find` on a 50-route table (exact, prefix and template paths, some with methods,
//! hosts or headers), for requests that match and requests that fall through to the default
//! upstream. Run with `cargo bench -p strangler --bench routing`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use strangler::config::RawConfig;
use strangler::routing::Table;

const AREAS: [&str; 10] = [
    "api", "misc", "shop", "admin", "static", "feeds", "account", "cart", "search", "help",
];

/// Five routes per area: a prefix, an exact path, a template, a nested template and a
/// literal sibling of the template, with a method, host or header condition on some.
fn routes_toml() -> String {
    let mut out = String::from("default_upstream = \"legacy\"\n");
    for (n, area) in AREAS.iter().enumerate() {
        let routes = [
            (format!("/{area}/*"), String::new()),
            (
                format!("/{area}/items"),
                ", methods = [\"GET\", \"HEAD\"]".to_owned(),
            ),
            (format!("/{area}/items/{{id}}"), String::new()),
            (
                format!("/{area}/items/{{id}}/detail/*"),
                format!(", host = \"{area}.example\""),
            ),
            (
                format!("/{area}/items/featured"),
                format!(", headers = {{ x-tier = \"{n}\" }}"),
            ),
        ];
        for (i, (path, extra)) in routes.iter().enumerate() {
            out.push_str(&format!(
                "[[routes]]\nid = \"{area}-{i}\"\nmode = \"shadow\"\nextracted = \"new\"\n\
                 match = {{ path = \"{path}\"{extra} }}\n"
            ));
        }
    }
    out
}

fn table() -> Table {
    let raw: RawConfig = match toml::from_str(&routes_toml()) {
        Ok(raw) => raw,
        Err(e) => panic!("bench routes do not parse: {e}"),
    };
    match Table::compile(&raw) {
        Ok(table) => table,
        Err(diags) => panic!("bench routes do not compile: {diags:?}"),
    }
}

fn find(c: &mut Criterion) {
    let table = table();
    assert_eq!(table.routes().len(), 50);
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    headers.insert("x-tier", HeaderValue::from_static("7"));

    let cases: [(&str, &Method, Option<&str>, &str); 8] = [
        ("exact", &Method::GET, Some("shop.example"), "/shop/items"),
        (
            "template",
            &Method::GET,
            Some("shop.example"),
            "/help/items/12345",
        ),
        (
            "literal-sibling+header",
            &Method::GET,
            None,
            "/cart/items/featured",
        ),
        (
            "nested-template+host",
            &Method::GET,
            Some("search.example:443"),
            "/search/items/9/detail/x",
        ),
        (
            "prefix-deep",
            &Method::POST,
            None,
            "/feeds/a/b/c/d/e?page=2",
        ),
        ("percent-encoded", &Method::GET, None, "/%61pi/items/42"),
        (
            "unmatched",
            &Method::GET,
            Some("shop.example"),
            "/checkout/confirm",
        ),
        ("unmatched-root", &Method::GET, None, "/"),
    ];
    let mut group = c.benchmark_group("find");
    for (name, method, host, path) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let found = table.find(
                    black_box(method),
                    black_box(host),
                    black_box(path),
                    &headers,
                );
                black_box(found.map(|m| m.route.id.len()))
            })
        });
    }
    group.finish();
}

fn compile(c: &mut Criterion) {
    let raw: RawConfig = match toml::from_str(&routes_toml()) {
        Ok(raw) => raw,
        Err(e) => panic!("bench routes do not parse: {e}"),
    };
    c.bench_function("compile-50", |b| {
        b.iter(|| Table::compile(black_box(&raw)).is_ok())
    });
}

criterion_group!(benches, find, compile);
criterion_main!(benches);
