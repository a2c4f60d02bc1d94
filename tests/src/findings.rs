//! What shadowing found, read where a user reads it: `GET /admin/shadow` (per-route tallies)
//! and `GET /admin/diffs` (recent comparison records), polled with a deadline until the
//! comparisons running off the hot path have finished.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::{Proxy, raw_client};

/// How long shadow findings may take to appear once the client has its answers.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// How often the admin API is polled.
const POLL: Duration = Duration::from_millis(20);

/// `GET url` as JSON, or `None` if it did not answer JSON.
async fn get_json(url: &str) -> Option<Value> {
    let response = raw_client().get(url).send().await.ok()?;
    serde_json::from_slice(&response.bytes().await.ok()?).ok()
}

/// Route `route`'s entry in `GET /admin/shadow`, if it has one.
pub async fn summary(proxy: &Proxy, route: &str) -> Option<Value> {
    let all = get_json(&format!("{}/admin/shadow", proxy.admin_url())).await?;
    all["routes"]
        .as_array()?
        .iter()
        .find(|r| r["route"] == route)
        .cloned()
}

/// How many requests a summary accounts for: compared, plus skipped for any reason.
pub fn accounted(summary: &Value) -> u64 {
    let skipped: u64 = summary["skipped"]
        .as_object()
        .map(|s| s.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    summary["compared"].as_u64().unwrap_or(0) + skipped
}

/// A summary's count of skips for `reason` (0 when absent).
pub fn skipped(summary: &Value, reason: &str) -> u64 {
    summary["skipped"][reason].as_u64().unwrap_or(0)
}

/// Polls route `route`'s summary until `done` holds, and returns it; panics naming `what`,
/// with the last summary seen, after [`DEADLINE`].
pub async fn summary_when(
    proxy: &Proxy,
    route: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let give_up = Instant::now() + DEADLINE;
    loop {
        let seen = summary(proxy, route).await;
        if let Some(s) = seen.as_ref().filter(|s| done(s)) {
            return s.clone();
        }
        assert!(
            Instant::now() < give_up,
            "gave up after {DEADLINE:?} waiting for {what}; route {route} in /admin/shadow: {seen:#?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until route `route` accounts for `n` requests and returns its summary; panics if it
/// accounts for more.
pub async fn accounted_for(proxy: &Proxy, route: &str, n: u64) -> Value {
    let s = summary_when(proxy, route, &format!("{n} requests accounted for"), |s| {
        accounted(s) >= n
    })
    .await;
    assert_eq!(
        accounted(&s),
        n,
        "more requests accounted for than sent: {s:#}"
    );
    s
}

/// `GET /admin/diffs?{query}` → its `diffs` (e.g. `route=r&verdict=regression&limit=100`).
pub async fn diffs(proxy: &Proxy, query: &str) -> Vec<Value> {
    let url = format!("{}/admin/diffs?{query}", proxy.admin_url());
    let body = get_json(&url).await.expect("/admin/diffs answers JSON");
    body["diffs"].as_array().cloned().unwrap_or_default()
}
