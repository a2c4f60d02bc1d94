//! The admin API over a real socket: health, readiness, the route listing, and the rule
//! that mutations need the configured bearer token (and are refused when none is configured).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use system_tests::{Proxy, named, raw_client, routes_toml};

const TOKEN: &str = "s3cret-admin-token";

/// Two routes over named upstreams; `admin_extra` goes into `[admin]`.
fn config(legacy: &str, new: &str, admin_extra: &str) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.new]
url = "{new}"

[[routes]]
id = "thumbnail"
match = {{ path = "/misc/thumbnail", methods = ["GET", "POST"] }}
mode = "extracted"
extracted = "new"

[[routes]]
id = "currency"
match = {{ path = "/misc/currency" }}
mode = "canary"
extracted = "new"
canary = {{ percent = 25, key = "cookie:session" }}
"#
        ),
    )
    .replace(
        "[admin]\naddress = \"127.0.0.1:0\"\n",
        &format!("[admin]\naddress = \"127.0.0.1:0\"\n{admin_extra}\n"),
    )
}

async fn json(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

#[tokio::test]
async fn health_and_readiness() {
    let legacy = named::start("L").await;
    let new = named::start("N").await;
    let proxy = Proxy::start(&config(&legacy.url(), &new.url(), "")).await;
    let client = raw_client();

    let health = client
        .get(format!("{}/healthz", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap().trim(), "ok");

    let ready = client
        .get(format!("{}/readyz", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert!(
        ready.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let ready = json(ready).await;
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["generation"], 1);
    assert_eq!(ready["routes"], 2);
    assert_eq!(ready["reloads"]["applied"], 0);
    assert_eq!(ready["reloads"]["rejected"], 0);

    // The admin API is its own listener: the proxy port forwards /readyz like any path.
    let through_proxy = client
        .get(format!("{}/readyz", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(through_proxy.text().await.unwrap(), "L");
}

#[tokio::test]
async fn route_listing_and_single_route() {
    let legacy = named::start("L").await;
    let new = named::start("N").await;
    let proxy = Proxy::start(&config(&legacy.url(), &new.url(), "")).await;
    let client = raw_client();

    let listing = client
        .get(format!("{}/admin/routes", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 200);
    let listing = json(listing).await;
    let routes = listing["routes"].as_array().expect("`routes` is an array");
    assert_eq!(routes.len(), 2, "{listing}");
    for route in routes {
        assert!(route["id"].is_string(), "every route has an id: {route}");
        assert!(route["mode"].is_string(), "every route has a mode: {route}");
    }
    let by_id = |id: &str| {
        routes
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no route {id} in {listing}"))
    };
    assert_eq!(by_id("thumbnail")["mode"], "extracted");
    assert_eq!(by_id("thumbnail")["extracted"], "new");
    assert_eq!(by_id("thumbnail")["path"], "/misc/thumbnail");
    assert_eq!(by_id("currency")["mode"], "canary");
    assert_eq!(by_id("currency")["canary_percent"], 25.0);

    let one = client
        .get(format!("{}/admin/routes/currency", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let one = json(one).await;
    assert_eq!(
        &one,
        by_id("currency"),
        "one route reads the same as in the listing"
    );

    let missing = client
        .get(format!("{}/admin/routes/nope", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let missing = json(missing).await;
    assert!(
        missing["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nope"),
        "{missing}"
    );
}

#[tokio::test]
async fn mutations_are_refused_without_a_configured_token() {
    let legacy = named::start("L").await;
    let new = named::start("N").await;
    let proxy = Proxy::start(&config(&legacy.url(), &new.url(), "")).await;
    let client = raw_client();
    let url = format!("{}/admin/reload", proxy.admin_url());

    for auth in [
        None,
        Some("Bearer "),
        Some("Bearer anything"),
        Some(&*format!("Bearer {TOKEN}")),
    ] {
        let mut request = client.post(&url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "authorization {auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = json(response).await;
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("read-only"),
            "{body}"
        );
    }
    let ready = json(
        client
            .get(format!("{}/readyz", proxy.admin_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        ready["reloads"]["applied"], 0,
        "a refused mutation did something: {ready}"
    );
    assert_eq!(
        ready["reloads"]["rejected"], 0,
        "a refused mutation did something: {ready}"
    );
}

#[tokio::test]
async fn mutations_need_the_right_token() {
    let legacy = named::start("L").await;
    let new = named::start("N").await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let admin_extra = format!("token_file = \"{}\"", token_file.display());
    let proxy = Proxy::start(&config(&legacy.url(), &new.url(), &admin_extra)).await;
    let client = raw_client();
    let url = format!("{}/admin/reload", proxy.admin_url());

    let wrong = [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {}", TOKEN.to_uppercase())),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
    ];
    for auth in wrong {
        let mut request = client.post(&url);
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "authorization {auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }

    let right = client
        .post(&url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(json(right).await["result"], "unchanged");

    // Reads stay open to everyone who can reach the listener.
    let listing = client
        .get(format!("{}/admin/routes", proxy.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 200);
}
