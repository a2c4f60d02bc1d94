//! The route lifecycle through the admin API and the CLI: flips write routes.toml (comments
//! kept), are applied by the running proxy, are checked against the lifecycle, and are
//! recorded in the audit journal; the kill switch sends every route back to the monolith.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::{Proxy, named, raw_client, routes_toml, strangler_bin, wait};

const TOKEN: &str = "lifecycle-token";

fn config(legacy: &str, new: &str) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.new]
url = "{new}"

# the thumbnail route is being moved
[[routes]]
id = "thumbnail"   # keep this comment
match = {{ path = "/misc/thumbnail" }}
mode = "shadow"
extracted = "new"

[[routes]]
id = "old"
match = {{ path = "/misc/old" }}
mode = "retired"
extracted = "new"
"#
        ),
    )
    .replace(
        "[admin]\naddress = \"127.0.0.1:0\"\n",
        "[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n",
    )
}

async fn start() -> (named::Named, named::Named, Proxy) {
    let legacy = named::start("L").await;
    let new = named::start("N").await;
    let proxy = Proxy::start_with_files(
        &config(&legacy.url(), &new.url()),
        &[("admin.token", TOKEN.as_bytes())],
    )
    .await;
    (legacy, new, proxy)
}

async fn answer(client: &reqwest::Client, proxy: &Proxy, path: &str) -> String {
    client
        .get(format!("{}{path}", proxy.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_flip_is_written_applied_and_audited() {
    let (_legacy, _new, proxy) = start().await;
    let client = raw_client();
    assert_eq!(answer(&client, &proxy, "/misc/thumbnail").await, "L");

    let url = format!("{}/admin/routes/thumbnail", proxy.admin_url());
    let refused = client
        .put(&url)
        .json(&json!({ "mode": "extracted" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "a flip without the token is refused");

    let flipped = client
        .put(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "mode": "extracted", "reason": "diffs clean for a week" }))
        .send()
        .await
        .unwrap();
    assert_eq!(flipped.status(), 200);
    let body: Value = flipped.json().await.unwrap();
    assert_eq!(body["changes"][0]["from"], "shadow");
    assert_eq!(body["changes"][0]["to"], "extracted");
    assert!(body["generation"].as_u64().is_some(), "{body}");
    assert_eq!(
        answer(&client, &proxy, "/misc/thumbnail").await,
        "N",
        "applied at once"
    );

    let text = std::fs::read_to_string(proxy.config_path()).unwrap();
    assert!(
        text.contains("# keep this comment")
            && text.contains("# the thumbnail route is being moved")
    );
    assert!(text.contains("mode = \"extracted\""));
    let journal = std::fs::read_to_string(proxy.dir.path().join(".strangler-audit.jsonl")).unwrap();
    assert!(
        journal.contains("diffs clean for a week") && journal.contains("\"by\":\"admin\""),
        "{journal}"
    );
}

#[tokio::test]
async fn transitions_are_checked_and_a_refused_flip_leaves_the_file() {
    let (_legacy, _new, proxy) = start().await;
    let client = raw_client();
    let before = std::fs::read_to_string(proxy.config_path()).unwrap();
    let url = format!("{}/admin/routes/thumbnail", proxy.admin_url());
    let skip = client
        .put(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "mode": "retired" }))
        .send()
        .await
        .unwrap();
    assert_eq!(skip.status(), 409);
    assert!(skip.text().await.unwrap().contains("--force"));
    let canary = client
        .put(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "mode": "canary" }))
        .send()
        .await
        .unwrap();
    assert_eq!(canary.status(), 409, "a canary needs a percentage");
    let unknown = client
        .put(format!("{}/admin/routes/nope", proxy.admin_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "mode": "legacy" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        std::fs::read_to_string(proxy.config_path()).unwrap(),
        before
    );
}

#[tokio::test]
async fn kill_switch_sends_everything_back_but_retired_routes() {
    let (_legacy, _new, proxy) = start().await;
    let client = raw_client();
    let killed = client
        .post(format!("{}/admin/kill", proxy.admin_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(killed.status(), 200);
    let body: Value = killed.json().await.unwrap();
    let changes = body["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{body}");
    assert_eq!(changes[0]["route"], "thumbnail");
    assert_eq!(
        answer(&client, &proxy, "/misc/old").await,
        "N",
        "retired stays on the new service"
    );
}

#[tokio::test]
async fn cli_flip_all_is_picked_up_by_the_running_proxy() {
    let (_legacy, _new, proxy) = start().await;
    let client = raw_client();
    let out = std::process::Command::new(strangler_bin())
        .args([
            "flip",
            "thumbnail",
            "canary",
            "--percent",
            "100",
            "--config",
        ])
        .arg(proxy.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait::until("the canary flip applied", Duration::from_secs(20), || {
        std::fs::read_to_string(proxy.config_path()).is_ok_and(|t| t.contains("percent = 100"))
    })
    .await;
    wait::eventually(
        "all users on the new service",
        Duration::from_secs(20),
        || {
            let client = client.clone();
            let url = format!("{}/misc/thumbnail", proxy.url());
            async move {
                let text = client.get(url).send().await.ok()?.text().await.ok()?;
                (text == "N").then_some(())
            }
        },
    )
    .await;
    let out = std::process::Command::new(strangler_bin())
        .args(["flip", "--all", "legacy", "--config"])
        .arg(proxy.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("thumbnail: canary 100% → legacy"));
    wait::eventually("back on the monolith", Duration::from_secs(20), || {
        let client = client.clone();
        let url = format!("{}/misc/thumbnail", proxy.url());
        async move {
            let text = client.get(url).send().await.ok()?.text().await.ok()?;
            (text == "L").then_some(())
        }
    })
    .await;
}
