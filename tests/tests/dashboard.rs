//! The dashboard as a person uses it: headless Chromium loads `GET /` of the admin listener
//! of a proxy that has seen real traffic, and must show the routes and their modes, a
//! regression with its JSON pointer and both values, flip a route through the page (asking
//! for the token, showing the server's refusal text), and show markup carried by traffic (a
//! `<script>` in a path, an `<img onerror>` in a diff value) as text that never runs.
//!
//! The browser side is `tests/browser/dashboard.mjs` (playwright-core driving Debian's
//! `chromium`); `.ci/run` installs both. Under CI (`CI=true`) a missing browser or node fails
//! the test; elsewhere the test is skipped with the reason printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use system_tests::candidate::{Answer, PriceBug, Recorder};
use system_tests::{Legacy, Proxy, findings, raw_client, routes_toml};

const TOKEN: &str = "dashboard-token";
/// The product whose price the catalog candidate gets wrong.
const BUGGY: &str = "BLUE-LAMP";
/// A path carrying a script tag, as a person reads it.
const SCRIPT_PATH: &str = "/api/products/<script>alert(1)</script>";
/// The same path as it goes on the wire (and into the diff records).
const SCRIPT_PATH_SENT: &str = "/api/products/%3Cscript%3Ealert(1)%3C/script%3E";
/// What the greeting candidate wrongly answers: markup inside a diff value.
const MARKUP_VALUE: &str = "<img src=x onerror=alert(2)>";
/// How long the browser script may run.
const BROWSER_DEADLINE: Duration = Duration::from_secs(240);

/// The browser driver's folder, or why the browser test cannot run here.
fn browser_driver() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let answers = |program: &str| {
        std::process::Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !answers("chromium") {
        return Err("`chromium --version` does not answer (apt-get install chromium)".into());
    }
    if !answers("node") {
        return Err("`node --version` does not answer (install Node.js)".into());
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Err(format!(
            "playwright-core is not installed in {} (run npm ci there)",
            dir.display()
        ));
    }
    Ok(dir)
}

fn config(legacy: &str, catalog: &str, hello_legacy: &str, hello_new: &str) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.catalog]
url = "{catalog}"
[upstreams.hello_legacy]
url = "{hello_legacy}"
[upstreams.hello_new]
url = "{hello_new}"

[[routes]]
id = "catalog"
match = {{ path = "/api/products/*", methods = ["GET"] }}
mode = "shadow"
extracted = "catalog"

[[routes]]
id = "greeting"
match = {{ path = "/hello" }}
mode = "shadow"
legacy = "hello_legacy"
extracted = "hello_new"

[[routes]]
id = "health"
match = {{ path = "/misc/health" }}
mode = "legacy"
extracted = "catalog"

[[routes]]
id = "feeds"
match = {{ path = "/misc/feed.rss" }}
mode = "canary"
extracted = "catalog"
canary = {{ percent = 25 }}

[[routes]]
id = "currency"
match = {{ path = "/misc/currency" }}
mode = "extracted"
extracted = "catalog"
"#
        ),
    )
    .replace(
        "[admin]\naddress = \"127.0.0.1:0\"\n",
        "[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n",
    )
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let legacy = Legacy::stable().await;
    let proxy = Proxy::start(&routes_toml(&legacy.url(), "")).await;
    let client = raw_client();
    for (path, content_type, needle) in [
        ("/", "text/html", "<title>strangler"),
        ("/dashboard/app.js", "text/javascript", "textContent"),
        ("/dashboard/style.css", "text/css", ".badge"),
    ] {
        let answer = client
            .get(format!("{}{path}", proxy.admin_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        assert!(
            header("content-security-policy").contains("script-src 'self'"),
            "{path}: scripts only from the admin listener itself"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let body = answer.text().await.unwrap();
        assert!(body.contains(needle), "{path}");
        // The SVG namespace is a name, not an address that is fetched.
        let addresses = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !addresses.contains("http://") && !addresses.contains("https://"),
            "{path} loads nothing from elsewhere (machines may be offline)"
        );
    }
    proxy.stop().await;
    legacy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_routes_and_diffs_and_flips_a_route() {
    let driver = match browser_driver() {
        Ok(dir) => dir,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the dashboard browser test cannot run under CI: {why}")
        }
        Err(why) => {
            eprintln!("skipped: the dashboard browser test cannot run here: {why}");
            return;
        }
    };

    let legacy = Legacy::stable().await;
    let catalog = PriceBug::start(&legacy.url(), BUGGY).await;
    let hello_legacy = Recorder::start(Answer::json(
        200,
        &json!({ "greeting": "hello", "user": "ada" }),
    ))
    .await;
    let hello_new = Recorder::start(Answer::json(
        200,
        &json!({ "greeting": MARKUP_VALUE, "user": "ada" }),
    ))
    .await;
    let proxy = Proxy::start_with_files(
        &config(
            &legacy.url(),
            &catalog.url(),
            &hello_legacy.url(),
            &hello_new.url(),
        ),
        &[("admin.token", TOKEN.as_bytes())],
    )
    .await;

    // Traffic: every catalog product (one of them wrong on the candidate), the greeting (wrong
    // with markup), the other routes, and a path carrying a script tag.
    let client = raw_client();
    let products: Value = client
        .get(format!("{}/api/products", legacy.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let skus: Vec<String> = products["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_owned())
        .collect();
    assert!(skus.iter().any(|s| s == BUGGY), "{skus:?}");
    let mut paths: Vec<String> = skus.iter().map(|s| format!("/api/products/{s}")).collect();
    paths.extend(["/hello", "/hello", "/misc/health", "/misc/feed.rss"].map(String::from));
    for path in &paths {
        let answer = client
            .get(format!("{}{path}", proxy.url()))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
    }
    // HTTP allows no `<` in a request target: it travels percent-encoded, as a browser or
    // any client sends it, and the dashboard shows paths decoded.
    let scripted = client
        .get(format!("{}{SCRIPT_PATH}", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(scripted.status(), 404, "{SCRIPT_PATH}: no such product");

    // The comparisons finish off the hot path: wait until the API shows what the page must.
    let sent = skus.len() as u64 + 1;
    findings::summary_when(
        &proxy,
        "catalog",
        "every catalog request accounted for",
        |s| findings::accounted(s) >= sent,
    )
    .await;
    findings::summary_when(&proxy, "greeting", "the greeting regression", |s| {
        s["regression"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let records = findings::diffs(&proxy, "route=catalog&limit=100").await;
    assert!(
        records.iter().any(|r| r["path"] == SCRIPT_PATH_SENT),
        "the script path is recorded as sent: {records:#?}"
    );

    // The browser.
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/dashboard.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&screenshot);
    let run = tokio::process::Command::new("node")
        .arg(driver.join("dashboard.mjs"))
        .arg(proxy.admin_url())
        .arg(TOKEN)
        .arg(&screenshot)
        .current_dir(&driver)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BROWSER_DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("the browser script ran past {BROWSER_DEADLINE:?}"))
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("dashboard.mjs stdout:\n{stdout}\ndashboard.mjs stderr:\n{stderr}");
    assert!(
        out.status.success(),
        "the browser script failed ({}); screenshot (if any) at {}",
        out.status,
        screenshot.display()
    );

    // What the page did is what the proxy now runs.
    let health: Value = client
        .get(format!("{}/admin/routes/health", proxy.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["mode"], "shadow",
        "the flip made in the page: {health}"
    );
    let journal = std::fs::read_to_string(proxy.dir.path().join(".strangler-audit.jsonl")).unwrap();
    assert!(journal.contains("\"by\":\"admin\""), "{journal}");
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");

    proxy.stop().await;
    legacy.stop().await;
}
