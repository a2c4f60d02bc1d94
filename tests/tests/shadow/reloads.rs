//! Reloads: changing a route's shadow settings keeps what was counted.

use serde_json::json;
use system_tests::candidate::{Answer, Recorder};
use system_tests::findings::{accounted, accounted_for, diffs, skipped, summary, summary_when};
use system_tests::{Legacy, Proxy, raw_client, routes_toml};

use super::{get, reload, send, until};

/// A shadow route on `/misc/health` with the given `shadow` table.
fn health_route(legacy: &str, candidate: &str, shadow: &str) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.candidate]
url = "{candidate}"

[[routes]]
id = "health"
match = {{ path = "/misc/health" }}
mode = "shadow"
extracted = "candidate"
shadow = {shadow}
"#
        ),
    )
}

/// Tallies taken before a reload that changes the route's shadow settings are still there
/// after it, and new findings add to them.
#[tokio::test]
async fn a_reload_changing_shadow_settings_keeps_the_tallies() {
    let legacy = Legacy::stable().await;
    let candidate = Recorder::start(Answer::json(200, &json!({"status": "ok"}))).await;
    let proxy = Proxy::start(&health_route(
        &legacy.url(),
        &candidate.url(),
        r#"{ timeout = "10s", baseline = 0.0 }"#,
    ))
    .await;
    let client = raw_client();
    let url = format!("{}/misc/health", proxy.url());
    for _ in 0..3 {
        get(&client, &url, &[]).await;
    }
    for _ in 0..2 {
        send(&client, reqwest::Method::POST, &url, &[], "x").await;
    }
    let before = accounted_for(&proxy, "health", 5).await;
    assert_eq!(before["compared"], 3, "{before:#}");
    assert_eq!(skipped(&before, "method_not_allowed"), 2, "{before:#}");

    reload(
        &proxy,
        &health_route(
            &legacy.url(),
            &candidate.url(),
            r#"{ timeout = "20s", baseline = 0.0, writes = "mirror" }"#,
        ),
    )
    .await;
    let after = summary(&proxy, "health").await.unwrap();
    assert_eq!(after["compared"], before["compared"], "{after:#}");
    assert_eq!(after["skipped"], before["skipped"], "{after:#}");

    // The new settings apply (a write is now mirrored) and the counts go on from where they were.
    get(&client, &url, &[]).await;
    send(&client, reqwest::Method::POST, &url, &[], "x").await;
    let s = accounted_for(&proxy, "health", 7).await;
    assert_eq!(s["compared"], 5, "{s:#}");
    assert_eq!(skipped(&s, "method_not_allowed"), 2, "{s:#}");
    assert_eq!(diffs(&proxy, "route=health&limit=100").await.len(), 7);
    proxy.stop().await;
    legacy.stop().await;
}

/// Copies sent before a reload that changes the route's shadow settings, and answered after
/// it, are counted like any other: a reload must not orphan the findings of work in flight.
#[tokio::test]
async fn copies_in_flight_across_a_reload_are_still_counted() {
    let legacy = Legacy::stable().await;
    let candidate = Recorder::gated(Answer::json(200, &json!({"status": "ok"}))).await;
    let proxy = Proxy::start(&health_route(
        &legacy.url(),
        &candidate.url(),
        r#"{ timeout = "30s", baseline = 0.0 }"#,
    ))
    .await;
    let client = raw_client();
    let url = format!("{}/misc/health", proxy.url());
    // Three copies reach the candidate, which holds its answers.
    for _ in 0..3 {
        assert_eq!(get(&client, &url, &[]).await.status, 200);
    }
    until("three copies at the candidate", || candidate.count() == 3).await;

    // The settings change while they are in flight; one more request runs under the new ones.
    reload(
        &proxy,
        &health_route(
            &legacy.url(),
            &candidate.url(),
            r#"{ timeout = "40s", baseline = 0.0 }"#,
        ),
    )
    .await;
    assert_eq!(get(&client, &url, &[]).await.status, 200);
    until("the fourth copy at the candidate", || {
        candidate.count() == 4
    })
    .await;

    candidate.open();
    until("the candidate to answer every copy", || {
        candidate.answered() == 4
    })
    .await;
    let s = summary_when(&proxy, "health", "all four copies compared", |s| {
        s["compared"] == 4
    })
    .await;
    assert_eq!(accounted(&s), 4, "{s:#}");
    proxy.stop().await;
    legacy.stop().await;
}
