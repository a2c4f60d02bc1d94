//! Cluster mode (#11, first part): instances sharing route modes through a JetStream KV
//! bucket on the shared NATS server (each test its own bucket, deleted at the end). A flip
//! through one instance reaches all; concurrent flips resolve by compare-and-set; a
//! restarted instance takes the fleet's modes over its file's; without NATS an instance
//! starts from its on-disk copy, refuses flips and still takes the kill switch. Second part
//! (`decide`): promotion on the fleet's pooled evidence, and one leader deciding, handing
//! over when it dies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster/applied.rs"]
mod applied;
#[path = "cluster/cli.rs"]
mod cli;
#[path = "cluster/decide.rs"]
mod decide;
#[path = "cluster/export.rs"]
mod export;
#[path = "cluster/fleet.rs"]
mod fleet;

use fleet::{Instance, delete_bucket};
use serde_json::json;
use system_tests::brokers;
use system_tests::wait::eventually;

/// Three instances on one new bucket.
async fn three(nats: &str, bucket: &str) -> Vec<Instance> {
    let mut fleet = Vec::new();
    for name in ["edge-1", "edge-2", "edge-3"] {
        fleet.push(Instance::start(nats, bucket, name).await);
    }
    fleet
}

async fn stop_all(fleet: &mut [Instance]) {
    for instance in fleet {
        instance.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flip_through_one_instance_is_applied_by_all_three() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bucket = brokers::unique("fleet");
    let mut fleet = three(&nats, &bucket).await;
    let client = reqwest::Client::new();

    // Seeded from the file by the first instance; the others found it there.
    let seeded = fleet[0].route(&client, "thumbnail").await;
    assert_eq!(seeded["mode"], "shadow");
    let seeded_revision = seeded["revision"]
        .as_u64()
        .expect("a revision in cluster mode");
    for instance in &fleet[1..] {
        let view = instance.route(&client, "thumbnail").await;
        assert_eq!(view["revision"].as_u64(), Some(seeded_revision), "{view}");
    }

    let asked = std::time::Instant::now();
    let (status, answer) = fleet[1]
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 10, "reason": "fleet test" }),
        )
        .await;
    eprintln!("flip answered in {:?}", asked.elapsed());
    assert_eq!(status, 200, "{answer}");
    let revision = answer["revisions"]["thumbnail"]
        .as_u64()
        .expect("the new revision");
    assert!(revision > seeded_revision);
    let flipped = std::time::Instant::now();
    for instance in &fleet {
        instance
            .until_applied(&client, "thumbnail", "canary", Some(10.0), revision)
            .await;
    }
    // Reported, not asserted (the benchmark's job): flip answered → all three applied.
    eprintln!("applied by all three within {:?}", flipped.elapsed());
    // The other route was not touched.
    for instance in &fleet {
        assert_eq!(instance.route(&client, "currency").await["mode"], "shadow");
    }
    let ready = fleet[2].ready(&client).await;
    assert_eq!(ready["cluster"]["online"], true, "{ready}");
    assert_eq!(ready["cluster"]["instance"], "edge-3", "{ready}");
    assert_eq!(ready["cluster"]["started_from"], "bucket", "{ready}");

    stop_all(&mut fleet).await;
    delete_bucket(&nats, &bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_flips_on_one_revision_one_wins_one_conflicts() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bucket = brokers::unique("fleet");
    let mut fleet = three(&nats, &bucket).await;
    let client = reqwest::Client::new();
    let revision = fleet[0].route(&client, "thumbnail").await["revision"]
        .as_u64()
        .expect("a revision");

    // Both asked with the revision they saw: the store lets exactly one through.
    let (first, second) = tokio::join!(
        fleet[0].flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 5, "revision": revision }),
        ),
        fleet[1].flip(
            &client,
            "thumbnail",
            json!({ "mode": "legacy", "revision": revision }),
        ),
    );
    let statuses = [first.0, second.0];
    assert!(
        statuses.contains(&200) && statuses.contains(&409),
        "one wins, one conflicts: {first:?} {second:?}"
    );
    let (winner, loser, won_mode, won_percent) = if first.0 == 200 {
        (first.1, second.1, "canary", Some(5.0))
    } else {
        (second.1, first.1, "legacy", None)
    };
    let error = loser["error"].as_str().expect("an error message");
    assert!(
        error.contains("changed by someone else first") && error.contains(won_mode),
        "the conflict names the current mode: {error}"
    );
    let new_revision = winner["revisions"]["thumbnail"]
        .as_u64()
        .expect("the winner's revision");
    for instance in &fleet {
        instance
            .until_applied(&client, "thumbnail", won_mode, won_percent, new_revision)
            .await;
    }
    // A stale revision is refused even when it comes alone.
    let (status, answer) = fleet[2]
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "shadow", "revision": revision }),
        )
        .await;
    assert_eq!(status, 409, "{answer}");

    stop_all(&mut fleet).await;
    delete_bucket(&nats, &bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_instance_comes_back_with_the_fleets_modes_not_its_files() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bucket = brokers::unique("fleet");
    let mut fleet = three(&nats, &bucket).await;
    let client = reqwest::Client::new();

    let (status, answer) = fleet[0]
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 20 }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let revision = answer["revisions"]["thumbnail"].as_u64().expect("revision");
    fleet[2]
        .until_applied(&client, "thumbnail", "canary", Some(20.0), revision)
        .await;
    fleet[2].stop().await;
    // Its file still says shadow; the fleet moved on while it was away.
    let (status, answer) = fleet[0]
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 40 }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let revision = answer["revisions"]["thumbnail"].as_u64().expect("revision");
    assert!(
        std::fs::read_to_string(fleet[2].config())
            .unwrap()
            .contains("mode = \"shadow\"")
    );

    fleet[2].restart().await;
    // No polling: the modes are read before the instance serves.
    let view = fleet[2].route(&client, "thumbnail").await;
    assert_eq!(view["mode"], "canary", "{view}");
    assert_eq!(view["canary_percent"], 40.0, "{view}");
    assert_eq!(view["revision"].as_u64(), Some(revision), "{view}");

    // A mode edited in the file is ignored in cluster mode (the reload finds nothing new).
    let path = fleet[2].config();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("mode = \"shadow\"", "mode = \"legacy\"", 1),
    )
    .unwrap();
    let reloaded: serde_json::Value = client
        .post(format!("{}/admin/reload", fleet[2].admin()))
        .bearer_auth(fleet::TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reloaded["result"], "unchanged", "{reloaded}");
    assert_eq!(fleet[2].route(&client, "thumbnail").await["mode"], "canary");

    stop_all(&mut fleet).await;
    delete_bucket(&nats, &bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_nats_an_instance_serves_its_copy_refuses_flips_and_takes_the_kill_switch() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    let bucket = brokers::unique("fleet");
    let mut instance = Instance::start(&nats, &bucket, "edge-1").await;
    let client = reqwest::Client::new();
    let (status, answer) = instance
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 30 }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let revision = answer["revisions"]["thumbnail"].as_u64().expect("revision");
    instance
        .until_applied(&client, "thumbnail", "canary", Some(30.0), revision)
        .await;
    instance.stop().await;
    assert!(
        instance
            .dir
            .path()
            .join(strangler::cluster::OFFLINE_COPY)
            .is_file(),
        "the applied modes were copied to disk"
    );

    // Same bucket, but NATS is unreachable (nothing listens on port 1).
    let path = instance.config();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(&nats, "nats://127.0.0.1:1")).unwrap();
    instance.restart().await;
    let view = instance.route(&client, "thumbnail").await;
    assert_eq!(view["mode"], "canary", "the copy, not the file: {view}");
    assert_eq!(view["canary_percent"], 30.0, "{view}");
    let ready = instance.ready(&client).await;
    assert_eq!(ready["cluster"]["online"], false, "{ready}");
    assert_eq!(ready["cluster"]["started_from"], "offline copy", "{ready}");
    assert!(
        ready["cluster"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("127.0.0.1:1")),
        "{ready}"
    );
    let metrics = client
        .get(format!("{}/metrics", instance.admin()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("strangler_cluster_connected{instance=\"edge-1\"} 0")
            && metrics.contains("strangler_cluster_started_offline{instance=\"edge-1\"} 1"),
        "{metrics}"
    );

    let (status, answer) = instance
        .flip(&client, "thumbnail", json!({ "mode": "shadow" }))
        .await;
    assert_eq!(status, 503, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("unreachable") && error.contains("kill switch"),
        "{error}"
    );

    let (status, answer) = instance.kill(&client).await;
    assert_eq!(status, 200, "{answer}");
    for route in ["thumbnail", "currency"] {
        assert_eq!(instance.route(&client, route).await["mode"], "legacy");
    }
    assert_eq!(
        instance.ready(&client).await["cluster"]["kill_switch_pending"],
        true
    );

    instance.stop().await;
    delete_bucket(&nats, &bucket).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_flips_the_fleet_and_shows_revisions() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    // Built before any instance starts, so no deadline below waits for a compiler.
    tokio::task::spawn_blocking(system_tests::strangler_bin)
        .await
        .unwrap();
    let bucket = brokers::unique("fleet");
    let mut fleet = three(&nats, &bucket).await;
    let client = reqwest::Client::new();
    let config = fleet[0].config();
    let config = config.to_str().unwrap();

    let out = cli::strangler(&[
        "flip",
        "currency",
        "canary",
        "--percent",
        "15",
        "--config",
        config,
    ])
    .await;
    let (stdout, stderr) = cli::text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("currency: shadow → canary 15%") && stdout.contains(&bucket),
        "{stdout}"
    );
    let revision: u64 = stdout
        .split("[revision ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a revision in {stdout}"));
    for instance in &fleet {
        instance
            .until_applied(&client, "currency", "canary", Some(15.0), revision)
            .await;
    }
    assert!(
        std::fs::read_to_string(fleet[0].config())
            .unwrap()
            .matches("mode = \"shadow\"")
            .count()
            == 2,
        "routes.toml is not written in cluster mode"
    );

    let out = cli::strangler(&["routes", "--config", config]).await;
    let (stdout, stderr) = cli::text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("currency"))
        .unwrap_or_else(|| panic!("a currency line in {stdout}"));
    assert!(
        line.contains("canary 15%") && line.split_whitespace().any(|c| c == revision.to_string()),
        "{line}"
    );

    // A transition the lifecycle refuses is refused by the fleet too.
    let out = cli::strangler(&["flip", "currency", "retired", "--config", config]).await;
    let (_, stderr) = cli::text(&out);
    assert!(
        !out.status.success() && stderr.contains("--force"),
        "{stderr}"
    );

    stop_all(&mut fleet).await;
    delete_bucket(&nats, &bucket).await;

    // Without NATS the command line refuses and says what still works.
    let text = std::fs::read_to_string(fleet[0].config()).unwrap();
    std::fs::write(fleet[0].config(), text.replace(&nats, "nats://127.0.0.1:1")).unwrap();
    let out = cli::strangler(&["flip", "currency", "legacy", "--config", config]).await;
    let (_, stderr) = cli::text(&out);
    assert!(
        !out.status.success() && stderr.contains("/admin/kill") && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_lost_while_running_refuses_flips_keeps_the_kill_switch_and_converges_after() {
    // A NATS of the test's own, so it can be killed and started again on the same store.
    let Some(mut nats) = brokers::BrokerProcess::start(brokers::Broker::Nats) else {
        return;
    };
    let url = nats.url();
    let bucket = brokers::unique("fleet");
    let legacy = system_tests::Legacy::stable().await;
    let mut a = Instance::start_with_legacy(&url, &bucket, "edge-a", &legacy.url()).await;
    let mut b = Instance::start_with_legacy(&url, &bucket, "edge-b", &legacy.url()).await;
    let client = reqwest::Client::new();
    let seeded = a.route(&client, "thumbnail").await["revision"]
        .as_u64()
        .expect("seeded");

    tokio::task::block_in_place(|| nats.kill());
    for instance in [&a, &b] {
        eventually(
            "the instance to notice NATS is gone",
            fleet::CONVERGE,
            || async {
                (instance.ready(&client).await["cluster"]["online"] == false).then_some(())
            },
        )
        .await;
    }
    let (status, answer) = b
        .flip(&client, "thumbnail", json!({ "mode": "legacy" }))
        .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{answer}"
    );
    // The data path does not wait for NATS: the monolith answers every request.
    for instance in [&a, &b] {
        for path in ["/misc/thumbnail", "/misc/currency", "/healthz"] {
            for _ in 0..20 {
                let response = client
                    .get(format!("{}{path}", instance.url()))
                    .send()
                    .await
                    .expect("the proxy answers");
                assert!(
                    response.headers().get("x-strangler-error").is_none(),
                    "{path}: {:?}",
                    response.headers()
                );
            }
        }
    }
    // The kill switch applies at once on the instance it is given to.
    let (status, answer) = a.kill(&client).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(a.route(&client, "thumbnail").await["mode"], "legacy");
    assert_eq!(b.route(&client, "thumbnail").await["mode"], "shadow");
    // A restart before NATS returns keeps the switch (the on-disk copy holds it).
    a.stop().await;
    a.restart().await;
    let ready = a.ready(&client).await;
    assert_eq!(ready["cluster"]["started_from"], "offline copy", "{ready}");
    assert_eq!(ready["cluster"]["kill_switch_pending"], true, "{ready}");
    assert_eq!(a.route(&client, "thumbnail").await["mode"], "legacy");

    tokio::task::block_in_place(|| nats.restart());
    // A writes its kill switch to the bucket; B (and A) apply it from there.
    for route in ["thumbnail", "currency"] {
        for instance in [&a, &b] {
            let what = format!("{route} back to legacy fleet-wide after NATS returned");
            let revision = eventually(&what, fleet::CONVERGE, || async {
                let view = instance.route(&client, route).await;
                let rev = view["revision"].as_u64().filter(|r| *r > seeded);
                (view["mode"] == "legacy").then_some(rev).flatten()
            })
            .await;
            assert!(revision > seeded);
        }
    }
    for instance in [&a, &b] {
        let ready = instance.ready(&client).await;
        assert_eq!(ready["cluster"]["online"], true, "{ready}");
        assert_eq!(ready["cluster"]["kill_switch_pending"], false, "{ready}");
    }
    // Flips work again.
    let (status, answer) = b
        .flip(&client, "thumbnail", json!({ "mode": "shadow" }))
        .await;
    assert_eq!(status, 200, "{answer}\n{}", nats.log());

    a.stop().await;
    b.stop().await;
    legacy.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_started_without_nats_joins_when_it_comes_back() {
    let Some(mut nats) = brokers::BrokerProcess::start(brokers::Broker::Nats) else {
        return;
    };
    tokio::task::block_in_place(|| nats.kill());
    let bucket = brokers::unique("fleet");
    let mut instance = Instance::start(&nats.url(), &bucket, "edge-1").await;
    let client = reqwest::Client::new();
    let ready = instance.ready(&client).await;
    assert_eq!(ready["cluster"]["online"], false, "{ready}");
    assert_eq!(ready["cluster"]["started_from"], "routes.toml", "{ready}");
    let view = instance.route(&client, "thumbnail").await;
    assert_eq!(view["mode"], "shadow", "{view}");
    assert_eq!(view["revision"], serde_json::Value::Null, "{view}");

    tokio::task::block_in_place(|| nats.restart());
    // It joins: seeds the new bucket from its file and serves the bucket's revision.
    eventually(
        "the instance to join the fleet",
        fleet::CONVERGE,
        || async {
            let view = instance.route(&client, "thumbnail").await;
            view["revision"].as_u64().map(|_| ())
        },
    )
    .await;
    assert_eq!(instance.ready(&client).await["cluster"]["online"], true);
    let (status, answer) = instance
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 5 }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    instance.stop().await;
}
