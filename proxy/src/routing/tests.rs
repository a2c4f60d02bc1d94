//! Table tests: specificity, overlap detection, explanations.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::*;

/// Parses `routes` (TOML `[[routes]]` entries) after a `default_upstream = "legacy"` line.
pub(super) fn raw(routes: &str) -> RawConfig {
    toml::from_str(&format!("default_upstream = \"legacy\"\n{routes}")).unwrap()
}

pub(super) fn table(routes: &str) -> Table {
    match Table::compile(&raw(routes)) {
        Ok(t) => t,
        Err(diags) => panic!("{diags:#?}"),
    }
}

fn errors(routes: &str) -> Vec<Diagnostic> {
    match Table::compile(&raw(routes)) {
        Ok(t) => panic!(
            "expected errors, got {:?}",
            t.routes().iter().map(|r| &r.id).collect::<Vec<_>>()
        ),
        Err(diags) => diags,
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (n, v) in pairs {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

pub(super) fn route(id: &str, path: &str, extra: &str) -> String {
    format!(
        "[[routes]]\nid = \"{id}\"\nmode = \"extracted\"\nextracted = \"new\"\n\
         match = {{ path = \"{path}\"{extra} }}\n"
    )
}

/// A request: method, host, path, headers.
type Request<'a> = (&'a str, Option<&'a str>, &'a str, &'a [(&'a str, &'a str)]);

fn find_id(t: &Table, (method, host, path, hs): Request<'_>) -> Option<String> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    t.find(&method, host, path, &headers(hs))
        .map(|m| m.route.id.to_string())
}

pub(super) fn specificity_table() -> Table {
    let routes = [
        route("featured", "/api/products/featured", ""),
        route("product", "/api/products/{id}", ""),
        route("products-any", "/api/products/*", ""),
        route("api", "/api/*", ""),
        route("orders", "/api/orders/*", ""),
        route("order-get", "/api/orders/{id}", ", methods = [\"GET\"]"),
        route("order-any", "/api/orders/{id}", ""),
        route("users", "/api/{ver}/users/*", ""),
        route("misc", "/misc/*", ""),
        route("reports-admin", "/reports", ", host = \"admin.example\""),
        route("reports", "/reports", ""),
        route("search-beta", "/search", ", headers = { x-beta = \"1\" }"),
        route("search", "/search", ""),
        route("slash", "/a/", ""),
        route("no-slash", "/a", ""),
        route("cafe", "/café", ""),
    ];
    // File order never decides: compile them backwards.
    table(&routes.iter().rev().cloned().collect::<String>())
}

#[test]
fn most_specific_route_wins() {
    let t = specificity_table();
    let cases: &[(Request<'_>, Option<&str>)] = &[
        (
            ("GET", None, "/api/products/featured", &[]),
            Some("featured"),
        ),
        (("GET", None, "/api/products/42", &[]), Some("product")),
        (
            ("GET", None, "/api/products/42?ref=home", &[]),
            Some("product"),
        ),
        (
            ("GET", None, "/api/products/42/reviews", &[]),
            Some("products-any"),
        ),
        (("GET", None, "/api/products", &[]), Some("products-any")),
        (("GET", None, "/api/products/", &[]), Some("products-any")),
        (("GET", None, "/api/orders/7", &[]), Some("order-get")),
        (("POST", None, "/api/orders/7", &[]), Some("order-any")),
        (("GET", None, "/api/orders", &[]), Some("orders")),
        (("GET", None, "/api/orders/7/lines", &[]), Some("orders")),
        (("GET", None, "/api/v2/users/9", &[]), Some("users")),
        (("GET", None, "/api/other", &[]), Some("api")),
        (("GET", None, "/api", &[]), Some("api")),
        (("GET", None, "/misc", &[]), Some("misc")),
        (("GET", None, "/misc/", &[]), Some("misc")),
        (("GET", None, "/misc/thumbnail", &[]), Some("misc")),
        (("GET", None, "/miscellaneous", &[]), None),
        (
            ("GET", Some("admin.example"), "/reports", &[]),
            Some("reports-admin"),
        ),
        (
            ("GET", Some("ADMIN.Example:8443"), "/reports", &[]),
            Some("reports-admin"),
        ),
        (
            ("GET", Some("admin.example."), "/reports", &[]),
            Some("reports-admin"),
        ),
        (
            ("GET", Some("shop.example"), "/reports", &[]),
            Some("reports"),
        ),
        (("GET", None, "/reports", &[]), Some("reports")),
        (
            ("GET", None, "/search", &[("x-beta", "1")]),
            Some("search-beta"),
        ),
        (
            ("GET", None, "/search", &[("X-Beta", "1")]),
            Some("search-beta"),
        ),
        (("GET", None, "/search", &[("x-beta", "2")]), Some("search")),
        (
            ("GET", None, "/search", &[("x-beta", "2"), ("x-beta", "1")]),
            Some("search"),
        ),
        (("GET", None, "/search", &[]), Some("search")),
        (("GET", None, "/a", &[]), Some("no-slash")),
        (("GET", None, "/a/", &[]), Some("slash")),
        (("GET", None, "/a/b", &[]), None),
        (("GET", None, "/café", &[]), Some("cafe")),
        (("GET", None, "/caf%C3%A9", &[]), Some("cafe")),
        (("GET", None, "/caf%c3%a9", &[]), Some("cafe")),
        (("GET", None, "/%61pi/products/1", &[]), Some("product")),
        (("GET", None, "/cafe", &[]), None),
        (("GET", None, "/", &[]), None),
        (("GET", None, "", &[]), None),
        (("OPTIONS", None, "*", &[]), None),
        (("GET", None, "http://x/api/products/1", &[]), None),
    ];
    for (request, want) in cases {
        assert_eq!(find_id(&t, *request).as_deref(), *want, "{request:?}");
    }
}

#[test]
fn routes_are_in_precedence_order() {
    let t = specificity_table();
    let ids: Vec<&str> = t.routes().iter().map(|r| &*r.id).collect();
    let pos = |id: &str| ids.iter().position(|i| *i == id).unwrap();
    for (more, less) in [
        ("featured", "product"),
        ("product", "products-any"),
        ("products-any", "api"),
        ("orders", "api"),
        ("order-get", "order-any"),
        ("order-any", "orders"),
        ("reports-admin", "reports"),
        ("search-beta", "search"),
    ] {
        assert!(
            pos(more) < pos(less),
            "{more} should precede {less} in {ids:?}"
        );
    }
    // The order does not depend on the file's order.
    let forwards = table(
        &[
            route("b", "/b/{x}", ""),
            route("a", "/a/{x}", ""),
            route("c", "/*", ""),
        ]
        .concat(),
    );
    let backwards = table(
        &[
            route("c", "/*", ""),
            route("a", "/a/{x}", ""),
            route("b", "/b/{x}", ""),
        ]
        .concat(),
    );
    let ids = |t: &Table| {
        t.routes()
            .iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&forwards), ids(&backwards));
}

#[test]
fn exact_beats_prefix_with_same_literals() {
    let t = table(&[route("any", "/misc/*", ""), route("root", "/misc", "")].concat());
    assert_eq!(
        find_id(&t, ("GET", None, "/misc", &[])).as_deref(),
        Some("root")
    );
    assert_eq!(
        find_id(&t, ("GET", None, "/misc/x", &[])).as_deref(),
        Some("any")
    );
    let t = table(&[route("all", "/*", ""), route("root", "/", "")].concat());
    assert_eq!(
        find_id(&t, ("GET", None, "/", &[])).as_deref(),
        Some("root")
    );
    assert_eq!(
        find_id(&t, ("GET", None, "/x", &[])).as_deref(),
        Some("all")
    );
}

#[test]
fn params_are_captured_as_received() {
    let t = table(&route("user", "/api/{ver}/users/{id}/*", ""));
    let m = t
        .find(
            &Method::GET,
            None,
            "/api/v1/users/j%C3%B6rg/avatar?size=2",
            &HeaderMap::new(),
        )
        .unwrap();
    assert_eq!(m.route.id.as_ref(), "user");
    assert_eq!(m.param("ver"), Some("v1"));
    assert_eq!(m.param("id"), Some("j%C3%B6rg"));
    assert_eq!(m.param("nope"), None);
    let all: Vec<(&str, &str)> = m.params().collect();
    assert_eq!(all, [("ver", "v1"), ("id", "j%C3%B6rg")]);
}

#[test]
fn route_fields_are_precomputed() {
    let t = table(
        "[[routes]]\nid = \"thumb\"\nmode = \"shadow\"\nextracted = \"misc\"\n\
         max_request_body = \"1MiB\"\nmatch = { path = \"/misc/thumbnail\" }\n",
    );
    let r = t.route("thumb").unwrap();
    assert_eq!(&*r.legacy, "legacy");
    assert_eq!(r.extracted.as_deref(), Some("misc"));
    assert_eq!(&*r.pattern, "/misc/thumbnail");
    assert_eq!(r.max_request_body, Some(1 << 20));
    assert_eq!(r.shadow.as_ref().map(|s| s.sample), Some(1.0));
    assert_eq!(t.default_upstream(), "legacy");
    assert!(t.route("nope").is_none());
}

#[test]
fn equal_rank_overlaps_are_rejected_with_both_ids() {
    let diags = errors(
        &[
            route("p1", "/api/products/{id}", ""),
            route("p2", "/api/products/{sku}", ""),
        ]
        .concat(),
    );
    assert_eq!(diags.len(), 1);
    let d = &diags[0];
    assert_eq!(d.key, "routes[1].match");
    assert!(
        d.message.contains("`p1`") && d.message.contains("`p2`"),
        "{}",
        d.message
    );
    assert!(d.message.contains("GET /api/products/1"), "{}", d.message);
    assert!(
        d.hint
            .as_deref()
            .unwrap_or_default()
            .contains("more specific")
    );

    let cases = [
        // Same exact path twice.
        [route("a", "/x", ""), route("b", "/x", "")].concat(),
        // Same prefix; methods overlap on POST.
        [
            route("a", "/misc/*", ", methods = [\"GET\", \"POST\"]"),
            route("b", "/misc/*", ", methods = [\"POST\", \"PUT\"]"),
        ]
        .concat(),
        // Same host, spelled differently.
        [
            route("a", "/r", ", host = \"Shop.example\""),
            route("b", "/r", ", host = \"shop.example\""),
        ]
        .concat(),
        // Different header names: a request can carry both.
        [
            route("a", "/s", ", headers = { x-a = \"1\" }"),
            route("b", "/s", ", headers = { x-b = \"1\" }"),
        ]
        .concat(),
        // Encoded and plain spelling of one literal.
        [route("a", "/caf%C3%A9", ""), route("b", "/café", "")].concat(),
    ];
    for routes in cases {
        let diags = errors(&routes);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert!(diags[0].message.contains("`a`") && diags[0].message.contains("`b`"));
    }
    let diags = errors(
        &[
            route("a", "/misc/*", ", methods = [\"GET\", \"POST\"]"),
            route("b", "/misc/*", ", methods = [\"POST\", \"PUT\"]"),
        ]
        .concat(),
    );
    assert!(
        diags[0].message.contains("POST /misc/anything"),
        "{}",
        diags[0].message
    );
    let diags = errors(
        &[
            route("a", "/s", ", headers = { x-a = \"1\" }"),
            route("b", "/s", ", headers = { x-b = \"1\" }"),
        ]
        .concat(),
    );
    assert!(diags[0].message.contains("x-a: 1") && diags[0].message.contains("x-b: 1"));
}

#[test]
fn equal_rank_disjoint_routes_are_accepted() {
    let t = table(
        &[
            route("get", "/o/{id}", ", methods = [\"GET\"]"),
            route("post", "/o/{id}", ", methods = [\"POST\"]"),
            route("h1", "/r", ", host = \"a.example\""),
            route("h2", "/r", ", host = \"b.example\""),
            route("v1", "/s", ", headers = { x-v = \"1\" }"),
            route("v2", "/s", ", headers = { x-v = \"2\" }"),
            route("x", "/x/*", ""),
            route("y", "/y/*", ""),
        ]
        .concat(),
    );
    assert_eq!(
        find_id(&t, ("GET", None, "/o/1", &[])).as_deref(),
        Some("get")
    );
    assert_eq!(
        find_id(&t, ("POST", None, "/o/1", &[])).as_deref(),
        Some("post")
    );
    assert_eq!(find_id(&t, ("PUT", None, "/o/1", &[])), None);
    assert_eq!(
        find_id(&t, ("GET", Some("b.example"), "/r", &[])).as_deref(),
        Some("h2")
    );
    assert_eq!(
        find_id(&t, ("GET", None, "/s", &[("x-v", "2")])).as_deref(),
        Some("v2")
    );
}

#[test]
fn bad_input_is_a_diagnostic_not_a_panic() {
    let diags = errors(
        &[
            route("a", "nope", ""),
            route("b", "/x", ", methods = [\"G T\"]"),
        ]
        .concat(),
    );
    let keys: Vec<&str> = diags.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["routes[0].match.path", "routes[1].match.methods"]);
    let diags = errors(&route("a", "/x", ", headers = { \"bad name\" = \"1\" }"));
    assert_eq!(diags[0].key, "routes[0].match.headers");
    let diags = errors(&route(
        "a",
        "/x",
        ", headers = { X-A = \"1\", x-a = \"2\" }",
    ));
    assert_eq!(diags[0].key, "routes[0].match.headers");
}

#[test]
fn hosts_ignore_port_case_and_brackets() {
    let t = table(
        &[
            route("v6", "/x", ", host = \"::1\""),
            route("name", "/x", ", host = \"Shop.Example\""),
        ]
        .concat(),
    );
    for (host, want) in [
        ("[::1]:8080", Some("v6")),
        ("[::1]", Some("v6")),
        ("shop.example", Some("name")),
        ("SHOP.EXAMPLE:80", Some("name")),
        ("shop.example.:80", Some("name")),
        ("shop.example.org", None),
        ("", None),
        ("[", None),
    ] {
        assert_eq!(
            find_id(&t, ("GET", Some(host), "/x", &[])).as_deref(),
            want,
            "{host}"
        );
    }
}

#[test]
fn lower_case_methods_are_normalized() {
    let t = table(&route("a", "/x", ", methods = [\"get\"]"));
    assert_eq!(find_id(&t, ("GET", None, "/x", &[])).as_deref(), Some("a"));
}
