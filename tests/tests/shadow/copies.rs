//! What a copy carries (writes only when allowed, marked, with the route's header edits), and
//! what the client never sees (anything of the candidate's answer).

use std::collections::BTreeSet;

use serde_json::json;
use system_tests::candidate::{Answer, Recorder};
use system_tests::findings::{accounted_for, diffs, skipped};
use system_tests::{Legacy, Proxy, raw_client, routes_toml};

use super::{Got, get, send, until};

// === Writes and header edits ===

#[tokio::test]
async fn writes_are_mirrored_only_when_the_route_says_so_with_header_edits_on_the_copy_alone() {
    let placed = json!({"id": "ord-1", "status": "placed"});
    let legacy = Recorder::start(Answer::json(201, &placed)).await;
    let candidate = Recorder::start(Answer::json(201, &placed)).await;
    let proxy = Proxy::start(&routes_toml(
        &legacy.url(),
        &format!(
            r#"[upstreams.candidate]
url = "{candidate}"

[[routes]]
id = "orders-default"
match = {{ path = "/default/orders" }}
mode = "shadow"
extracted = "candidate"

[[routes]]
id = "orders-mirror"
match = {{ path = "/mirror/orders" }}
mode = "shadow"
extracted = "candidate"
shadow = {{ writes = "mirror", baseline = 0.0, remove_headers = ["authorization"], set_headers = {{ "x-tenant" = "shadow-tenant", "x-candidate-key" = "k-123" }} }}
"#,
            candidate = candidate.url()
        ),
    ))
    .await;
    let client = raw_client();
    let order = r#"{"sku":"RED-CHAIR","quantity":2}"#;
    let headers = [
        ("authorization", "Bearer client-secret"),
        ("x-tenant", "real-tenant"),
        ("content-type", "application/json"),
    ];

    // By default a write goes to legacy alone.
    let got = send(
        &client,
        reqwest::Method::POST,
        &format!("{}/default/orders", proxy.url()),
        &headers,
        order,
    )
    .await;
    assert_eq!(got.status, 201);
    let s = accounted_for(&proxy, "orders-default", 1).await;
    assert_eq!(skipped(&s, "method_not_allowed"), 1, "{s:#}");
    assert_eq!(candidate.count(), 0, "{:#?}", candidate.requests());
    assert_eq!(legacy.count(), 1);
    // …while a read on the same route is mirrored, marked.
    get(&client, &format!("{}/default/orders", proxy.url()), &[]).await;
    until("the read's copy", || candidate.count() == 1).await;
    let read = &candidate.requests()[0];
    assert_eq!(read.method, "GET");
    assert!(read.is_shadow_copy(), "{read:#?}");

    // With `writes = "mirror"` the candidate gets a marked copy, edited; legacy the original.
    let got = send(
        &client,
        reqwest::Method::POST,
        &format!("{}/mirror/orders", proxy.url()),
        &headers,
        order,
    )
    .await;
    assert_eq!(got.status, 201);
    assert_eq!(got.body, placed.to_string());
    until("the write's copy", || candidate.count() == 2).await;
    let copy = &candidate.requests()[1];
    assert_eq!(copy.method, "POST");
    assert_eq!(copy.target, "/mirror/orders");
    assert_eq!(copy.body, order, "the copy's body");
    assert!(copy.is_shadow_copy(), "{copy:#?}");
    assert_eq!(copy.header("authorization"), None, "{copy:#?}");
    let tenants: Vec<_> = copy.headers.get_all("x-tenant").iter().collect();
    assert_eq!(tenants, ["shadow-tenant"], "{copy:#?}");
    assert_eq!(copy.header("x-candidate-key"), Some("k-123"));

    let original = legacy
        .requests()
        .into_iter()
        .find(|r| r.target == "/mirror/orders")
        .expect("legacy got the write");
    assert_eq!(original.method, "POST");
    assert_eq!(original.body, order);
    assert_eq!(
        original.header("authorization"),
        Some("Bearer client-secret")
    );
    let tenants: Vec<_> = original.headers.get_all("x-tenant").iter().collect();
    assert_eq!(tenants, ["real-tenant"], "{original:#?}");
    assert_eq!(original.header("x-candidate-key"), None, "{original:#?}");
    assert!(!original.is_shadow_copy(), "{original:#?}");
    assert!(
        legacy.requests().iter().all(|r| !r.is_shadow_copy()),
        "legacy got a marked copy"
    );

    let s = accounted_for(&proxy, "orders-mirror", 1).await;
    assert_eq!(s["compared"], 1, "{s:#}");
    assert_eq!(s["equal"], 1, "{s:#}");
    proxy.stop().await;
}

// === The client sees nothing of the candidate ===

#[tokio::test]
async fn the_candidates_cookies_and_body_never_reach_the_client() {
    // Two identical shops: one asked directly, one behind the proxy.
    let direct = Legacy::stable().await;
    let behind = Legacy::stable().await;
    let candidate = Recorder::start(
        Answer::text(200, "<html><body>the candidate's cart</body></html>")
            .header("content-type", "text/html; charset=utf-8")
            .header("set-cookie", "session=candidate-s3cr3t; Path=/")
            .header("set-cookie", "tracking=candidate-tr4ck; Path=/")
            .header("x-candidate", "yes"),
    )
    .await;
    let proxy = Proxy::start(&routes_toml(
        &behind.url(),
        &format!(
            r#"[upstreams.candidate]
url = "{candidate}"

[[routes]]
id = "cart"
match = {{ path = "/cart", methods = ["GET"] }}
mode = "shadow"
extracted = "candidate"
shadow = {{ baseline = 0.0 }}
"#,
            candidate = candidate.url()
        ),
    ))
    .await;
    let client = raw_client();
    let rounds = 3;
    for round in 0..rounds {
        // No cookie: each shop opens a fresh session and sets its cookie.
        let want = get(&client, &format!("{}/cart", direct.url()), &[]).await;
        let got = get(&client, &format!("{}/cart", proxy.url()), &[]).await;
        assert_eq!(got.status, want.status, "round {round}");
        let cookies = |g: &Got| -> Vec<String> {
            g.headers
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(cookies(&got), cookies(&want), "round {round}");
        assert!(!cookies(&got).is_empty(), "legacy sets a session cookie");
        assert_eq!(got.header("x-candidate"), "", "round {round}");
        assert_eq!(got.body, want.body, "round {round}: not legacy's body");
    }
    // The candidate did answer every copy, and the proxy compared them.
    let s = accounted_for(&proxy, "cart", rounds).await;
    assert_eq!(s["regression"], rounds, "{s:#}");
    assert_eq!(candidate.answered(), rounds as usize);
    let records = diffs(&proxy, "route=cart").await;
    let pointers: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r["differences"].as_array().into_iter().flatten())
        .filter_map(|d| d["pointer"].as_str())
        .collect();
    assert!(pointers.contains("/headers/set-cookie"), "{pointers:?}");
    assert!(pointers.contains("/body"), "{pointers:?}");
    // Cookie values may be credentials: the report names cookies, never their values.
    let report = serde_json::to_string(&records).unwrap();
    assert!(
        !report.contains("candidate-s3cr3t") && !report.contains("candidate-tr4ck"),
        "{report}"
    );
    proxy.stop().await;
    direct.stop().await;
    behind.stop().await;
}
