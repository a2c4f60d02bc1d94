//! The mismatch corpus end to end: a buggy candidate in shadow gets one product's price
//! wrong; the proxy captures that regression on disk (secrets redacted); `strangler diffs`
//! shows it from the running proxy; once the proxy has stopped, `strangler replay` sends the
//! captured request to a fixed candidate (exit 0, resolved) and to the buggy one again
//! (exit 1, the same pointer still differs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use system_tests::candidate::PriceBug;
use system_tests::findings::{self, summary_when};
use system_tests::wait::eventually;
use system_tests::{Legacy, Proxy, raw_client, routes_toml, strangler_bin};

/// The product whose price the buggy candidate gets wrong.
const BUGGY: &str = "BLUE-LAMP";
/// A product the candidate gets right.
const FINE: &str = "RED-CHAIR";
/// A credential the client sends: it must never reach the corpus.
const SECRET: &str = "Bearer replay-test-secret";

/// Runs the real `strangler` binary (without blocking the runtime the proxy runs on).
async fn strangler(args: &[&str]) -> Output {
    tokio::process::Command::new(strangler_bin())
        .args(args)
        .output()
        .await
        .expect("run strangler")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every line of every segment in the corpus folder.
fn corpus_text(folder: &Path) -> String {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[tokio::test]
async fn captured_regressions_replay_against_a_fixed_candidate() {
    let legacy = Legacy::stable().await;
    let buggy = PriceBug::start(&legacy.url(), BUGGY).await;
    // The same relay, wrong about a product that does not exist: the fixed candidate.
    let fixed = PriceBug::start(&legacy.url(), "NO-SUCH-PRODUCT").await;
    let proxy = Proxy::start(&routes_toml(
        &legacy.url(),
        &format!(
            r#"[upstreams.candidate]
url = "{}"

[[routes]]
id = "catalog"
match = {{ path = "/api/products/*", methods = ["GET"] }}
mode = "shadow"
extracted = "candidate"
"#,
            buggy.url()
        ),
    ))
    .await;
    let config = proxy.config_path();
    let config = config.to_str().unwrap().to_owned();
    let client = raw_client();
    for sku in [FINE, BUGGY, FINE] {
        let response = client
            .get(format!("{}/api/products/{sku}", proxy.url()))
            .header("authorization", SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{sku}");
    }

    // The regression is found, and captured.
    let regressions = eventually(
        "a regression in /admin/diffs",
        findings::DEADLINE,
        || async {
            let found = findings::diffs(&proxy, "route=catalog&verdict=regression").await;
            (!found.is_empty()).then_some(found)
        },
    )
    .await;
    assert_eq!(regressions.len(), 1, "{regressions:#?}");
    assert_eq!(regressions[0]["path"], format!("/api/products/{BUGGY}"));
    let summary = summary_when(&proxy, "catalog", "the regression captured", |s| {
        s["corpus"]["captured"].as_u64() == Some(1)
    })
    .await;
    assert_eq!(summary["compared"], 3, "{summary:#}");
    assert_eq!(
        summary["corpus"]["dropped"],
        Value::Object(Default::default())
    );

    // `strangler diffs` reads the running proxy.
    let admin = proxy.handle.admin_addr().to_string();
    let out = strangler(&["diffs", "--config", &config, "--admin", &admin]).await;
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("route catalog: 3 compared, 2 equal, 0 noise, 1 regression"),
        "{text}"
    );
    assert!(text.contains("baseline   "), "{text}");
    assert!(
        text.contains(&format!("GET /api/products/{BUGGY}")),
        "{text}"
    );
    let pointer = text
        .lines()
        .find(|l| l.trim_start().starts_with("/body/price_cents"))
        .unwrap_or_else(|| panic!("no price pointer in:\n{text}"));
    assert!(
        pointer.contains("legacy ") && pointer.contains("candidate "),
        "{pointer}"
    );

    // Stop the proxy, keeping its folder (and the corpus in it).
    let Proxy { handle, dir } = proxy;
    handle.shutdown().await;
    let corpus = dir.path().join("data").join("diffs");
    let captured = corpus_text(&corpus);
    assert_eq!(captured.lines().count(), 1, "{captured}");
    assert!(!captured.contains("replay-test-secret"), "{captured}");
    assert!(captured.contains("[redacted]"), "{captured}");

    let fixed_run = strangler(&[
        "replay",
        "--route",
        "catalog",
        "--to",
        &fixed.url(),
        "--config",
        &config,
    ])
    .await;
    let text = stdout(&fixed_run);
    assert_eq!(fixed_run.status.code(), Some(0), "{text}");
    assert!(text.contains("1 of 1 mismatches resolved"), "{text}");
    assert!(
        text.contains(&format!("resolved     GET /api/products/{BUGGY}  equal")),
        "{text}"
    );
    assert_eq!(
        fixed.hits(),
        1,
        "the fixed candidate gets the captured request"
    );

    let buggy_run = strangler(&[
        "replay",
        "--route",
        "catalog",
        "--to",
        &buggy.url(),
        "--config",
        &config,
    ])
    .await;
    let text = stdout(&buggy_run);
    assert_eq!(buggy_run.status.code(), Some(1), "{text}");
    assert!(text.contains("0 of 1 mismatches resolved"), "{text}");
    assert!(text.contains("/body/price_cents"), "{text}");

    // With the proxy gone, `diffs` says so.
    let out = strangler(&["diffs", "--config", &config, "--admin", &admin]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "no strangler admin API at {admin}: is `strangler run` running?"
        )),
        "{err}"
    );
    drop(dir);
}
