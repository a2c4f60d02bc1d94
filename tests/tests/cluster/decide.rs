//! The fleet decides as one (#11, second part): promotion gates judge the evidence of every
//! instance, and only the holder of the leader lease acts, so a decision is taken once even
//! when the leader dies mid-rollout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Operation;
use futures_util::StreamExt;
use serde_json::json;
use strangler::cluster::ModeRecord;
use system_tests::brokers;
use system_tests::candidate::{Answer, Recorder};
use system_tests::wait::eventually;

use super::fleet::{CONVERGE, Instance, TOKEN, delete_bucket};

/// routes.toml of one instance: route `api` in shadow over `upstream` (the monolith and the
/// new service answer alike, so every comparison is equal), promoted automatically by a
/// gate of `min_samples` comparisons held for `window`; 1 s evidence windows and a 2 s lease.
fn routes(nats: &str, bucket: &str, name: &str, upstream: &str, gate: &str) -> String {
    format!(
        r#"default_upstream = "legacy"

[listen]
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"
token_file = "token"

[upstreams.legacy]
url = "{upstream}"

[upstreams.next]
url = "{upstream}"

[[routes]]
id = "api"
match = {{ path = "/api/items/{{id}}" }}
mode = "shadow"
extracted = "next"
shadow = {{ baseline = 0.0 }}
canary = {{ percent = 0, key = "request_id" }}
promote = {{ auto = true, max_p99_ratio = 50.0, steps = [50, 100], {gate} }}

[cluster]
kind = "nats"
url = "{nats}"
bucket = "{bucket}"
instance = "{name}"
evidence_window = "1s"
lease_ttl = "2s"
"#
    )
}

async fn three(nats: &str, bucket: &str, upstream: &str, gate: &str) -> Vec<Instance> {
    let mut fleet = Vec::new();
    for name in ["edge-1", "edge-2", "edge-3"] {
        fleet.push(Instance::start_with_routes(&routes(nats, bucket, name, upstream, gate)).await);
    }
    fleet
}

/// Sends `count` requests to `instance`, each answered 200.
async fn send(client: &reqwest::Client, instance: &Instance, count: usize) {
    for i in 0..count {
        let status = client
            .get(format!("{}/api/items/{i}", instance.url()))
            .send()
            .await
            .expect("the proxy answers")
            .status();
        assert_eq!(status, 200);
    }
}

/// `GET /metrics` of `instance`.
async fn metrics(client: &reqwest::Client, instance: &Instance) -> String {
    client
        .get(format!("{}/metrics", instance.admin()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin answers")
        .text()
        .await
        .expect("text")
}

/// Which of `fleet` (running ones) leads, once one does and all agree.
async fn leader(client: &reqwest::Client, fleet: &[Instance]) -> usize {
    eventually(
        "one instance to lead, and all to know it",
        CONVERGE,
        || async {
            let mut leads = Vec::new();
            let mut named = Vec::new();
            for (i, instance) in fleet.iter().enumerate() {
                if instance.handle.is_none() {
                    continue;
                }
                let cluster = instance.ready(client).await["cluster"].clone();
                if cluster["is_leader"] == true {
                    leads.push(i);
                }
                named.push(cluster["leader"].as_str().map(str::to_owned));
            }
            let agreed = named.windows(2).all(|w| w[0] == w[1]) && named[0].is_some();
            (leads.len() == 1 && agreed).then(|| leads[0])
        },
    )
    .await
}

/// Whether `fleet[0]` serves `api` as a canary within 6 s (polled every 100 ms).
async fn promoted(client: &reqwest::Client, fleet: &[Instance]) -> bool {
    for _ in 0..60 {
        if fleet[0].route(client, "api").await["mode"] == "canary" {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Every record of `modes.api` in the bucket's history written by the rollout:
/// (stage, instance that wrote it).
async fn rollout_writes(nats: &str, bucket: &str) -> Vec<(String, String)> {
    let client = async_nats::connect(nats).await.expect("connect to NATS");
    let store = async_nats::jetstream::new(client)
        .get_key_value(bucket)
        .await
        .expect("the bucket");
    let mut history = store.history("modes.api").await.expect("history");
    let mut writes = Vec::new();
    while let Some(entry) = tokio::time::timeout(Duration::from_secs(5), history.next())
        .await
        .expect("history within 5 s")
    {
        let entry = entry.expect("an entry");
        if entry.operation != Operation::Put {
            continue;
        }
        let record = ModeRecord::decode(&entry.value).expect("a mode record");
        if record.by == "rollout" {
            writes.push((record.stage().to_string(), record.instance));
        }
    }
    writes
}

/// The rollout's changes in the audit journal of `instance`.
fn journaled(instance: &Instance) -> Vec<String> {
    strangler::rollout::journal::recent(&instance.config(), 100)
        .into_iter()
        .filter(|c| c.route == "api" && c.by == "rollout")
        .map(|c| format!("{} → {}", c.from, c.to))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn traffic_spread_over_three_instances_promotes_on_the_fleet_total() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bucket = brokers::unique("decide");
    let upstream = Recorder::start(Answer::json(200, &json!({ "ok": true }))).await;
    // 30 comparisons are needed; each instance sees 12, so none could decide alone.
    let gate = r#"min_samples = 30, window = "2s""#;
    let mut fleet = three(&nats, &bucket, &upstream.url(), gate).await;
    let client = reqwest::Client::new();

    // Every instance judges on what the whole fleet reports about the current revision.
    for instance in &fleet {
        eventually(
            "every instance's evidence in every gate",
            CONVERGE,
            || async {
                let gate = instance.route(&client, "api").await["gate"].clone();
                let mut from: Vec<String> =
                    serde_json::from_value(gate["pooled_from"].clone()).unwrap_or_default();
                from.sort();
                (from == ["edge-1", "edge-2", "edge-3"]).then_some(())
            },
        )
        .await;
    }
    // Rounds of 12 requests per instance, at least 6 s apart: the gate counts one 10 s
    // evidence bucket, so an instance holds at most 24 comparisons, never the 30 needed,
    // while a round gives the fleet 36 (a round that straddles a bucket's end is followed
    // by another).
    let started = Instant::now();
    let mut rounds = 0;
    while !promoted(&client, &fleet).await {
        if rounds == 10 {
            let views = [
                fleet[0].route(&client, "api").await,
                fleet[1].route(&client, "api").await,
            ];
            panic!("no promotion after {rounds} rounds: {views:#?}");
        }
        rounds += 1;
        for instance in &fleet {
            send(&client, instance, 12).await;
        }
    }
    eprintln!(
        "promoted after {rounds} round(s) of 12 requests per instance, {:?}",
        started.elapsed()
    );
    for instance in &fleet {
        eventually("every instance to apply canary 50%", CONVERGE, || async {
            let view = instance.route(&client, "api").await;
            (view["mode"] == "canary" && view["canary_percent"] == 50.0).then_some(())
        })
        .await;
    }
    let writes = rollout_writes(&nats, &bucket).await;
    assert_eq!(writes.len(), 1, "one decision: {writes:?}");
    assert_eq!(writes[0].0, "canary 50%");
    let journals: Vec<Vec<String>> = fleet.iter().map(journaled).collect();
    assert_eq!(
        journals.concat(),
        ["shadow → canary 50%"],
        "recorded once, by the leader"
    );

    for instance in &mut fleet {
        instance.stop().await;
    }
    // A leader that stops cleanly releases the lease (a delete marker) rather than leaving
    // the fleet without a decider until it expires.
    let nats_client = async_nats::connect(&nats).await.expect("connect to NATS");
    let lease = async_nats::jetstream::new(nats_client)
        .get_key_value(format!("{bucket}-leader"))
        .await
        .expect("the lease bucket")
        .entry("leader")
        .await
        .expect("read the lease");
    assert!(
        lease.as_ref().is_none_or(|e| e.operation != Operation::Put),
        "released: {lease:?}"
    );
    delete_bucket(&nats, &bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_killed_mid_rollout_hands_over_and_the_rollout_finishes_once() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bucket = brokers::unique("decide");
    let upstream = Recorder::start(Answer::json(200, &json!({ "ok": true }))).await;
    let gate = r#"min_samples = 10, window = "4s""#;
    let mut fleet = three(&nats, &bucket, &upstream.url(), gate).await;
    let client = reqwest::Client::new();

    let first = leader(&client, &fleet).await;
    let name = |i: usize| format!("edge-{}", i + 1);
    for (i, instance) in fleet.iter().enumerate() {
        let text = metrics(&client, instance).await;
        let line = format!(
            "strangler_cluster_leader{{instance=\"{}\"}} {}",
            name(i),
            u8::from(i == first)
        );
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }

    // Traffic to the two followers only, bounded in count and time: the leader decides on
    // evidence it never saw itself.
    let followers: Vec<String> = (0..3)
        .filter(|i| *i != first)
        .map(|i| fleet[i].url())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        async move {
            let until = Instant::now() + Duration::from_secs(120);
            for i in 0..20_000usize {
                if stop.load(Ordering::Relaxed) || Instant::now() > until {
                    break;
                }
                let url = &followers[i % followers.len()];
                let _ = client.get(format!("{url}/api/items/{i}")).send().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    for i in (0..3).filter(|i| *i != first) {
        eventually("the first step, canary 50%", CONVERGE, || async {
            let view = fleet[i].route(&client, "api").await;
            (view["mode"] == "canary").then_some(())
        })
        .await;
    }
    fleet[first].crash();
    let crashed = Instant::now();
    let second = leader(&client, &fleet).await;
    eprintln!(
        "edge-{} took over {:?} after the crash",
        second + 1,
        crashed.elapsed()
    );
    assert_ne!(second, first);
    for i in (0..3).filter(|i| *i != first) {
        eventually("the rollout to finish: extracted", CONVERGE, || async {
            let view = fleet[i].route(&client, "api").await;
            (view["mode"] == "extracted").then_some(())
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    traffic.await.expect("traffic task");

    let writes = rollout_writes(&nats, &bucket).await;
    let stages: Vec<&str> = writes.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stages, ["canary 50%", "extracted"], "each decision once");
    assert_eq!(
        writes[0].1,
        name(first),
        "the first leader took the first step"
    );
    assert_eq!(writes[1].1, name(second), "its successor took the second");
    assert_eq!(journaled(&fleet[first]), ["shadow → canary 50%"]);
    assert_eq!(journaled(&fleet[second]), ["canary 50% → extracted"]);
    let third = 3 - first - second;
    assert!(
        journaled(&fleet[third]).is_empty(),
        "the third never decided"
    );

    for instance in &mut fleet {
        instance.stop().await;
    }
    delete_bucket(&nats, &bucket).await;
}
