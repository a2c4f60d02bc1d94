//! The route matcher: a fixed table of literal, `{param}`, prefix, host, method and header
//! routes, asked about an arbitrary method, host, path and header. `find` and `explain` must
//! choose the same route and never panic.

#![no_main]

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use strangler::{config, routing::Table};

const ROUTES: &str = r#"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:1"

[upstreams.new]
url = "http://127.0.0.1:2"

[[routes]]
id = "featured"
match = { path = "/api/products/featured" }
mode = "extracted"
extracted = "new"

[[routes]]
id = "product"
match = { path = "/api/products/{id}", methods = ["GET", "HEAD"] }
mode = "legacy"

[[routes]]
id = "products"
match = { path = "/api/products/*" }
mode = "legacy"

[[routes]]
id = "review"
match = { path = "/api/products/{id}/reviews/{review}" }
mode = "legacy"

[[routes]]
id = "cafe"
match = { path = "/caf%C3%A9/{x}/*" }
mode = "legacy"

[[routes]]
id = "host"
match = { path = "/api/*", host = "shop.example" }
mode = "legacy"

[[routes]]
id = "beta"
match = { path = "/api/*", headers = { x-beta = "1" } }
mode = "legacy"

[[routes]]
id = "api"
match = { path = "/api/*" }
mode = "legacy"

[[routes]]
id = "misc"
match = { path = "/misc" }
mode = "legacy"

[[routes]]
id = "root-param"
match = { path = "/{tenant}/orders" }
mode = "legacy"

[[routes]]
id = "slash"
match = { path = "/a/" }
mode = "legacy"
"#;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let config = config::from_toml_str(ROUTES, "fuzz.toml")
            .unwrap_or_else(|e| panic!("the fixed table is invalid: {e}"));
        Table::compile(config.raw()).unwrap_or_else(|e| panic!("cannot compile: {e:?}"))
    })
}

fuzz_target!(|data: &[u8]| {
    // Layout: method \0 host \0 path \0 header-value; missing parts are absent.
    let mut parts = data.splitn(4, |&b| b == 0);
    let method = parts
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or(Method::GET);
    let host = parts.next().map(String::from_utf8_lossy);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let mut headers = HeaderMap::new();
    if let Some(value) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert(HeaderName::from_static("x-beta"), value);
    }
    let table = table();
    let host = host.as_deref();
    let found = table.find(&method, host, &path, &headers).map(|m| {
        let _ = m.params().count();
        m.route.id.clone()
    });
    let explained = table.explain(&method, host, &path, &headers);
    assert_eq!(
        found, explained.chosen,
        "find and explain disagree on {method} {path:?}"
    );
});
