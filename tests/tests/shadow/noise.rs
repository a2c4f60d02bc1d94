//! Noise learning: what legacy varies on by itself is noise; what only the candidate changes
//! is a regression.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use system_tests::candidate::PriceBug;
use system_tests::findings::{accounted_for, diffs};
use system_tests::{Legacy, Proxy, raw_client, routes_toml};

use super::{Got, IN_FLIGHT, NO_HANG, get};

/// The product whose price the candidate gets wrong.
const BUGGY: &str = "BLUE-LAMP";

#[tokio::test]
async fn learned_noise_is_told_apart_from_a_real_bug() {
    // Legacy with real clocks. Its 1 s latency (slept before the handler runs) makes every
    // second answer to the same request carry a later `as_of` second than the first: the
    // second request is sent once the first answer's head is in, so its handler runs ≥ 1 s
    // after the first one's. That makes legacy's disagreement with itself certain, not luck.
    let legacy = Legacy::start(legacy_shim::Options {
        vary: true,
        latency: Duration::from_secs(1),
        ..legacy_shim::Options::default()
    })
    .await;
    // The candidate relays to the very same shop, so the only things that can differ are the
    // clock (which legacy's second answer shows to be noise) and the bug.
    let candidate = PriceBug::start(&legacy.url(), BUGGY).await;
    let proxy = Proxy::start(&routes_toml(
        &legacy.url(),
        &format!(
            r#"[upstreams.candidate]
url = "{candidate}"

[[routes]]
id = "catalog"
match = {{ path = "/api/products/*", methods = ["GET"] }}
mode = "shadow"
extracted = "candidate"
shadow = {{ baseline = 1.0 }}
"#,
            candidate = candidate.url()
        ),
    ))
    .await;
    let client = raw_client();
    let catalog = get(&client, &format!("{}/api/products", legacy.url()), &[]).await;
    let catalog: Value = serde_json::from_slice(&catalog.body).unwrap();
    let prices: BTreeMap<String, i64> = catalog["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["sku"].as_str().unwrap().to_owned(),
                p["price_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(prices.contains_key(BUGGY), "{prices:?}");

    // Every product once, and the whole catalog (whose `as_of` is "now") three times.
    let mut paths: Vec<String> = prices
        .keys()
        .map(|sku| format!("/api/products/{sku}"))
        .collect();
    paths.extend(std::iter::repeat_n("/api/products".to_owned(), 3));
    let sent = paths.len();
    let answers: Vec<Got> = tokio::time::timeout(
        NO_HANG,
        futures_util::stream::iter(paths)
            .map(|path| {
                let (client, url) = (client.clone(), format!("{}{path}", proxy.url()));
                async move { get(&client, &url, &[]).await }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect(),
    )
    .await
    .expect("the catalog requests did not finish");
    assert!(answers.iter().all(|a| a.status == 200));

    let s = accounted_for(&proxy, "catalog", sent as u64).await;
    assert_eq!(s["compared"], sent, "{s:#}");
    assert_eq!(s["regression"], 1, "only the buggy product: {s:#}");
    assert!(s["baseline_samples"].as_u64().unwrap() > 0, "{s:#}");
    let records = diffs(&proxy, "route=catalog&limit=100").await;
    assert_eq!(records.len(), sent, "{records:#?}");
    let mut noise = 0;
    for record in &records {
        let path = record["path"].as_str().unwrap();
        let differences = record["differences"].as_array().unwrap();
        assert!(
            record["baseline_samples"].as_u64().unwrap() > 0,
            "{record:#}"
        );
        if path == format!("/api/products/{BUGGY}") {
            assert_eq!(record["verdict"], "regression", "{record:#}");
            assert_eq!(record["total_differences"], 1, "{record:#}");
            assert_eq!(differences[0]["pointer"], "/body/price_cents", "{record:#}");
            assert_eq!(differences[0]["legacy"], prices[BUGGY], "{record:#}");
            assert_eq!(differences[0]["candidate"], prices[BUGGY] + 1, "{record:#}");
            assert_eq!(differences[0]["noise"], false, "{record:#}");
        } else if path == "/api/products" {
            // Legacy's own `as_of` moved between its two answers: noise, not a regression.
            assert_eq!(record["verdict"], "noise", "{record:#}");
            assert!(
                differences
                    .iter()
                    .any(|d| d["pointer"] == "/body/as_of" && d["noise"] == true),
                "{record:#}"
            );
            assert!(differences.iter().all(|d| d["noise"] == true), "{record:#}");
            noise += 1;
        } else {
            assert_eq!(record["verdict"], "equal", "{record:#}");
        }
    }
    assert_eq!(noise, 3, "{records:#?}");
    assert_eq!(s["noise"], 3, "{s:#}");
    proxy.stop().await;
    legacy.stop().await;
}
