//! Automatic promotion and rollback, end to end: a route with `promote = { auto = true }`
//! climbs shadow → canary steps → extracted while its candidate answers like legacy, and a
//! candidate that starts failing sends the route back to shadow — each move written to
//! routes.toml, recorded in the audit journal, and visible in the admin API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use system_tests::candidate::PriceBug;
use system_tests::{Legacy, Proxy, raw_client, routes_toml, wait};

/// A route over legacy-shim's product API with a fast gate (2 s windows, 15 samples).
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
}
