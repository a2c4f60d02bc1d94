//! Which instance applied which revision: after a flip, every instance's `/admin/routes`
//! names all three in the route's `applied_by` and lists them (with their revisions and the
//! leader) in its cluster object; `strangler routes` says `3/3`; a stopped instance drops out
//! once its record expires (three evidence windows of 1s here).

use std::time::Duration;

use serde_json::{Value, json};
use system_tests::brokers;
use system_tests::wait::eventually;

use super::cli;
use super::fleet::{CONVERGE, Instance, NOWHERE, delete_bucket, routes_toml};

/// `route`'s `applied_by` and the cluster object's instance names in `view`.
fn applied(view: &Value, route: &str) -> (Vec<String>, Vec<String>) {
    let names = |v: &Value, field: &str| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| {
                if field.is_empty() {
                    x.as_str()
                } else {
                    x[field].as_str()
                }
            })
            .map(str::to_owned)
            .collect()
    };
    let by = view["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == route)
        .map(|r| names(&r["applied_by"], ""))
        .unwrap_or_default();
    (by, names(&view["cluster"]["instances"], "instance"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instance_shows_who_applied_a_flip_and_a_stopped_one_drops_out() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    // Built before any instance starts, so no deadline below waits for a compiler.
    tokio::task::spawn_blocking(system_tests::strangler_bin)
        .await
        .expect("build strangler");
    let bucket = brokers::unique("fleet");
    let mut fleet = Vec::new();
    for name in ["edge-1", "edge-2", "edge-3"] {
        let routes = routes_toml(&nats, &bucket, name, NOWHERE) + "evidence_window = \"1s\"\n";
        fleet.push(Instance::start_with_routes(&routes).await);
    }
    let client = reqwest::Client::new();

    let (status, answer) = fleet[0]
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 10, "reason": "applied test" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let revision = answer["revisions"]["thumbnail"]
        .as_u64()
        .expect("the new revision");
    let all = ["edge-1", "edge-2", "edge-3"];
    for instance in &fleet {
        let what = format!(
            "{} to show all three applied revision {revision}",
            instance.admin()
        );
        let view = eventually(&what, CONVERGE, || async {
            let view = instance.routes(&client).await;
            let (by, members) = applied(&view, "thumbnail");
            (by == all && members == all).then_some(view)
        })
        .await;
        let one = instance.route(&client, "thumbnail").await;
        assert_eq!(one["applied_by"], json!(all), "{one}");
        assert_eq!(one["revision"].as_u64(), Some(revision), "{one}");
        for member in view["cluster"]["instances"].as_array().expect("instances") {
            assert_eq!(
                member["routes"]["thumbnail"].as_u64(),
                Some(revision),
                "{member}"
            );
            assert!(member["age_ms"].as_u64().is_some(), "{member}");
        }
    }
    // Exactly one of them leads, as the records say once the lease has settled.
    eventually("one leader among the records", CONVERGE, || async {
        let view = fleet[1].routes(&client).await;
        let leaders = view["cluster"]["instances"]
            .as_array()
            .map_or(0, |l| l.iter().filter(|m| m["leader"] == true).count());
        (leaders == 1).then_some(())
    })
    .await;

    // The command line reads the same records.
    let config = fleet[0].config();
    let config = config.to_str().expect("utf-8 path");
    eventually("`strangler routes` to say 3/3", CONVERGE, || async {
        let out = cli::strangler(&["routes", "--config", config]).await;
        let (stdout, stderr) = cli::text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("thumbnail"))
            .unwrap_or_else(|| panic!("a thumbnail line in {stdout}"))
            .to_owned();
        let columns: Vec<&str> = line.split_whitespace().collect();
        let done = columns.ends_with(&[revision.to_string().as_str(), "3/3"]);
        if !done {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        done.then_some(())
    })
    .await;

    // A stopped instance is gone from the others' views once its record expires.
    fleet[2].stop().await;
    let survivors = ["edge-1", "edge-2"];
    for instance in &fleet[..2] {
        let what = format!("{} to drop edge-3", instance.admin());
        eventually(&what, CONVERGE, || async {
            let view = instance.routes(&client).await;
            let (by, members) = applied(&view, "thumbnail");
            (by == survivors && members == survivors).then_some(())
        })
        .await;
    }

    for instance in &mut fleet {
        instance.stop().await;
    }
    delete_bucket(&nats, &bucket).await;
}
