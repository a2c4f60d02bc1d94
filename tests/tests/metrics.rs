//! `/metrics` parses as Prometheus text and its counters agree with the traffic sent,
//! including the candidate's latency histogram for compared shadow exchanges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use system_tests::{Legacy, Proxy, named, raw_client, routes_toml, wait};

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn scrape(client: &reqwest::Client, proxy: &Proxy) -> prometheus_parse::Scrape {
    let text = client
        .get(format!("{}/metrics", proxy.admin_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"))
}

#[tokio::test]
async fn counters_agree_with_the_traffic() {
    let legacy = Legacy::stable().await;
    let new = named::start("N").await;
    let proxy = Proxy::start(&routes_toml(
        &legacy.url(),
        &format!(
            r#"[upstreams.new]
url = "{}"

[[routes]]
id = "health"
match = {{ path = "/misc/health" }}
mode = "shadow"
extracted = "new"

[[routes]]
id = "moved"
match = {{ path = "/misc/moved" }}
mode = "extracted"
extracted = "new"
"#,
            new.url()
        ),
    ))
    .await;
    let client = raw_client();
    for _ in 0..7 {
        assert_eq!(
            client
                .get(format!("{}/misc/health", proxy.url()))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    for _ in 0..3 {
        client
            .get(format!("{}/misc/moved", proxy.url()))
            .send()
            .await
            .unwrap();
    }
    for _ in 0..2 {
        assert_eq!(
            client
                .get(format!("{}/no/such/page", proxy.url()))
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
    // Comparisons finish off the request path: wait for all seven.
    wait::eventually("seven comparisons", Duration::from_secs(20), || {
        let client = client.clone();
        let proxy = &proxy;
        async move {
            let s = scrape(&client, proxy).await;
            (value(
                &s,
                "strangler_shadow_comparisons_total",
                &[("route", "health")],
            ) == 7.0)
                .then_some(())
        }
    })
    .await;

    let s = scrape(&client, &proxy).await;
    let requests = "strangler_requests_total";
    assert_eq!(
        value(
            &s,
            requests,
            &[
                ("route", "health"),
                ("mode", "shadow"),
                ("side", "legacy"),
                ("status_class", "2xx")
            ]
        ),
        7.0
    );
    assert_eq!(
        value(
            &s,
            requests,
            &[
                ("route", "moved"),
                ("side", "extracted"),
                ("status_class", "2xx")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            requests,
            &[("route", ""), ("mode", "default"), ("status_class", "4xx")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "strangler_request_duration_seconds_count",
            &[("route", "health"), ("side", "legacy")]
        ),
        7.0
    );
    assert_eq!(
        value(
            &s,
            "strangler_route_mode",
            &[("route", "moved"), ("mode", "extracted")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "strangler_route_mode",
            &[("route", "moved"), ("mode", "legacy")]
        ),
        0.0
    );
    assert_eq!(
        value(&s, "strangler_reloads_total", &[("result", "rejected")]),
        0.0
    );
    // The candidate's latency: one observation per compared shadow exchange, none for the
    // route it answers directly (that is `strangler_request_duration_seconds`, side extracted).
    let compared = value(
        &s,
        "strangler_shadow_comparisons_total",
        &[("route", "health")],
    );
    let candidate = "strangler_shadow_candidate_duration_seconds";
    assert_eq!(
        value(&s, &format!("{candidate}_count"), &[("route", "health")]),
        compared
    );
    assert!(value(&s, &format!("{candidate}_sum"), &[("route", "health")]) > 0.0);
    assert_eq!(
        value(&s, &format!("{candidate}_count"), &[("route", "moved")]),
        0.0
    );
    let histogram = s
        .samples
        .iter()
        .find(|x| x.metric == candidate && x.labels.get("route") == Some("health"))
        .unwrap_or_else(|| panic!("no {candidate} histogram for route health"));
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("{candidate} is not a histogram: {:?}", histogram.value);
    };
    let last = buckets.last().expect("buckets");
    assert!(
        last.less_than.is_infinite() && last.count == compared,
        "{buckets:?}"
    );
    // The named candidate answers "N" where legacy answers JSON: every comparison is a regression.
    assert_eq!(
        value(
            &s,
            "strangler_shadow_comparisons_total",
            &[("route", "health"), ("verdict", "regression")]
        ),
        7.0
    );
}
