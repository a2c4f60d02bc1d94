//! Automatic promotion and rollback, end to end: a route with `promote = { auto = true }`
//! climbs shadow → canary steps → extracted while its candidate answers like legacy, and a
//! candidate that starts failing sends the route back to shadow — each move written to
//! routes.toml, recorded in the audit journal, visible in the admin API, and published on
//! the bus (a `rollout.promoted` / `rollout.rolled_back` event with its figures, and the
//! `route.changed` event of the reload that applied it, saying the rollout did it and why,
//! under the decision's correlation id).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use strangler::events::sink::{ReadFrom, log};
use strangler::events::{Event, types};
use system_tests::candidate::PriceBug;
use system_tests::{Legacy, Proxy, raw_client, routes_toml, wait};

/// A route over legacy-shim's product API with a fast gate (2 s windows, 15 samples), and
/// the embedded event log in `events/` beside routes.toml.
fn config(legacy: &str, candidate: &str) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.new]
url = "{candidate}"

[[routes]]
id = "product"   # the product API is moving
match = {{ path = "/api/products/{{sku}}" }}
mode = "shadow"
extracted = "new"
shadow = {{ baseline = 0.0 }}
canary = {{ percent = 0, key = "request_id" }}
promote = {{ auto = true, min_samples = 15, window = "2s", max_p99_ratio = 50.0, steps = [50, 100] }}
rollback = {{ min_samples = 10, max_error_rate_delta = 0.2 }}

[bus]
kind = "log"
path = "events"
fsync = "never"
"#
        ),
    )
}

/// Sends requests until `stop`, never more than 60 s.
fn traffic(proxy_url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let client = raw_client();
        let (mut sent, mut failed) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
            let answer = client
                .get(format!("{proxy_url}/api/products/RED-CHAIR"))
                .send()
                .await;
            sent += 1;
            if !answer.is_ok_and(|a| a.status().is_success()) {
                failed += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (sent, failed)
    })
}

/// Waits until the bus holds `n` events of type `kind` about the product route that
/// `relevant` keeps; returns them, oldest first, as "from → to" with the event.
async fn moves_on_the_bus(
    proxy: &Proxy,
    kind: &str,
    n: usize,
    relevant: impl Fn(&Event) -> bool,
) -> Vec<(String, Event)> {
    let folder = proxy.dir.path().join("events");
    wait::eventually(
        &format!("{n} {kind} events on the bus"),
        Duration::from_secs(10),
        || {
            let events = log::read(&folder, ReadFrom::Start, 1_000_000).unwrap_or_default();
            let moves: Vec<(String, Event)> = events
                .into_iter()
                .filter(|e| e.kind == kind && e.data.value()["route"] == "product" && relevant(e))
                .map(|e| {
                    let step = format!(
                        "{} → {}",
                        e.data.value()["from"].as_str().unwrap_or("?"),
                        e.data.value()["to"].as_str().unwrap_or("?")
                    );
                    (step, e)
                })
                .collect();
            async move { (moves.len() >= n).then_some(moves) }
        },
    )
    .await
}

/// The steps of `moves`, as "from → to".
fn steps(moves: &[(String, Event)]) -> Vec<&str> {
    moves.iter().map(|(step, _)| step.as_str()).collect()
}

/// Each route change was made by the rollout, for the reason its decision gave.
fn changed_by_the_rollout(changes: &[(String, Event)], decisions: &[(String, Event)]) {
    for ((_, change), (_, decision)) in changes.iter().zip(decisions) {
        assert_eq!(change.data.value()["by"], "rollout", "{:?}", change.data);
        assert_eq!(
            change.data.value()["reason"],
            decision.data.value()["reason"],
            "{:?} vs {:?}",
            change.data,
            decision.data
        );
        assert_eq!(
            change.correlationid, decision.correlationid,
            "the route change carries the correlation id of the decision that caused it"
        );
    }
}

async fn route(client: &reqwest::Client, proxy: &Proxy) -> Value {
    client
        .get(format!("{}/admin/routes/product", proxy.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for_mode(client: &reqwest::Client, proxy: &Proxy, mode: &str, percent: Option<f64>) {
    wait::eventually(
        &format!("route in {mode} {percent:?}"),
        Duration::from_secs(40),
        || {
            let client = client.clone();
            async move {
                let r = route(&client, proxy).await;
                let at = r["mode"] == mode
                    && (percent.is_none() || r["canary_percent"].as_f64() == percent);
                at.then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_candidate_climbs_to_extracted() {
    let legacy = Legacy::stable().await;
    let twin = Legacy::stable().await;
    let candidate = PriceBug::start(&twin.url(), "NO-SUCH-SKU").await;
    let proxy = Proxy::start(&config(&legacy.url(), &candidate.url())).await;
    let client = raw_client();
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(proxy.url(), stop.clone());

    let gate = route(&client, &proxy).await;
    assert!(gate["gate"].is_object() || gate["gate"].is_null(), "{gate}");
    wait_for_mode(&client, &proxy, "canary", Some(50.0)).await;
    wait_for_mode(&client, &proxy, "extracted", None).await;
    stop.store(true, Ordering::SeqCst);
    let (sent, failed) = load.await.unwrap();
    assert_eq!(
        failed, 0,
        "no client request failed while the route moved ({sent} sent)"
    );

    let text = std::fs::read_to_string(proxy.config_path()).unwrap();
    assert!(
        text.contains("mode = \"extracted\"") && text.contains("# the product API is moving"),
        "{text}"
    );
    let journal = std::fs::read_to_string(proxy.dir.path().join(".strangler-audit.jsonl")).unwrap();
    let moves: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let path: Vec<String> = moves
        .iter()
        .map(|m| {
            format!(
                "{} → {}",
                m["from"].as_str().unwrap(),
                m["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        path,
        ["shadow → canary 50%", "canary 50% → extracted"],
        "{journal}"
    );
    assert!(
        moves
            .iter()
            .all(|m| m["by"] == "rollout" && m["reason"].as_str().unwrap().contains("gate held"))
    );

    let promoted = moves_on_the_bus(&proxy, types::ROLLOUT_PROMOTED, 2, |_| true).await;
    assert_eq!(steps(&promoted), path, "rollout.promoted events");
    for (_, event) in &promoted {
        assert!(
            event.data.value()["reason"]
                .as_str()
                .unwrap()
                .contains("gate held")
                && event.data.value()["figures"].is_object(),
            "{:?}",
            event.data
        );
    }
    let changed = moves_on_the_bus(&proxy, types::ROUTE_CHANGED, 2, |_| true).await;
    assert_eq!(
        steps(&changed),
        ["shadow → canary", "canary → extracted"],
        "route.changed events"
    );
    changed_by_the_rollout(&changed, &promoted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_starts_failing_is_rolled_back() {
    let legacy = Legacy::stable().await;
    let twin = Legacy::stable().await;
    let candidate = PriceBug::start(&twin.url(), "NO-SUCH-SKU").await;
    let proxy = Proxy::start(&config(&legacy.url(), &candidate.url())).await;
    let client = raw_client();
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(proxy.url(), stop.clone());

    wait_for_mode(&client, &proxy, "canary", Some(50.0)).await;
    candidate.start_failing();
    wait_for_mode(&client, &proxy, "shadow", None).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();

    let journal = std::fs::read_to_string(proxy.dir.path().join(".strangler-audit.jsonl")).unwrap();
    let last: Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["from"], "canary 50%");
    assert_eq!(last["to"], "shadow");
    assert_eq!(last["by"], "rollout");
    assert!(
        last["reason"].as_str().unwrap().contains("error rate")
            || last["reason"].as_str().unwrap().contains("regression"),
        "{last}"
    );
    let gate = route(&client, &proxy).await;
    assert_eq!(gate["mode"], "shadow");

    let rolled_back = moves_on_the_bus(&proxy, types::ROLLOUT_ROLLED_BACK, 1, |_| true).await;
    assert_eq!(
        steps(&rolled_back),
        ["canary 50% → shadow"],
        "rollout.rolled_back events"
    );
    assert_eq!(rolled_back[0].1.data.value()["reason"], last["reason"]);
    let back = moves_on_the_bus(&proxy, types::ROUTE_CHANGED, 1, |e| {
        e.data.value()["to"] == "shadow"
    })
    .await;
    assert_eq!(steps(&back), ["canary → shadow"], "route.changed events");
    changed_by_the_rollout(&back, &rolled_back);
}
