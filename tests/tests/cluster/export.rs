//! `strangler cluster export`: the seed routes.toml with the fleet's modes written in, its
//! comments kept; routes the bucket does not know keep the file's mode; clear refusals
//! without `[cluster]` and without NATS.

use serde_json::json;
use system_tests::brokers;

use super::cli::{strangler, text};
use super::fleet::{Instance, NOWHERE, delete_bucket, routes_toml};

/// The instance's routes.toml with comments to keep and a route only this file has.
fn commented(nats: &str, bucket: &str) -> String {
    routes_toml(nats, bucket, "edge-export", NOWHERE)
        .replacen(
            "[[routes]]\nid = \"thumbnail\"",
            "# image resizing, moving to misc\n[[routes]]\nid = \"thumbnail\"   # the hot one",
            1,
        )
        .replacen(
            "[cluster]",
            "# a route the fleet has not seen yet\n[[routes]]\nid = \"fresh\"\nmatch = { path = \"/misc/fresh\" }\nmode = \"legacy\"\nextracted = \"misc\"\n\n[cluster]",
            1,
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn export_writes_the_fleets_modes_into_the_file_keeping_its_comments() {
    let Some(nats) = brokers::shared_nats() else {
        return;
    };
    tokio::task::spawn_blocking(system_tests::strangler_bin)
        .await
        .expect("build strangler");
    let bucket = brokers::unique("export");
    // The instance seeds thumbnail and currency; the export below uses a file with one more
    // route, which the bucket never saw.
    let mut instance = Instance::start(&nats, &bucket, "edge-export").await;
    let client = reqwest::Client::new();
    let (status, answer) = instance
        .flip(
            &client,
            "thumbnail",
            json!({ "mode": "canary", "percent": 20, "reason": "export test" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let revision = answer["revisions"]["thumbnail"]
        .as_u64()
        .expect("the new revision");
    instance
        .until_applied(&client, "thumbnail", "canary", Some(20.0), revision)
        .await;

    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("routes.toml");
    std::fs::write(&seed, commented(&nats, &bucket)).expect("write the seed file");
    let seed_arg = seed.to_str().expect("utf-8 path");
    let out = strangler(&["cluster", "export", "--config", seed_arg]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("1 of 3 route(s) changed") && stderr.contains("(thumbnail)"),
        "{stderr}"
    );
    assert!(stderr.contains("1 not in the bucket"), "{stderr}");

    let config = strangler::config::from_toml_str(&stdout, "exported")
        .unwrap_or_else(|d| panic!("the export validates: {d}\n{stdout}"));
    let mode = |id: &str| {
        let route = config.raw().routes.iter().find(|r| r.id == id);
        route.map(|r| (r.mode.to_string(), r.canary.as_ref().map(|c| c.percent)))
    };
    assert_eq!(mode("thumbnail"), Some(("canary".into(), Some(20.0))));
    assert_eq!(mode("currency"), Some(("shadow".into(), None)));
    assert_eq!(mode("fresh"), Some(("legacy".into(), None)));
    for comment in [
        "# image resizing, moving to misc",
        "# the hot one",
        "# a route the fleet has not seen yet",
    ] {
        assert!(stdout.contains(comment), "`{comment}` kept:\n{stdout}");
    }
    // Printed, not written: the seed file is as it was.
    assert_eq!(
        std::fs::read_to_string(&seed).expect("read the seed"),
        commented(&nats, &bucket)
    );
    // The exported file, checked by the binary itself.
    let exported = dir.path().join("exported.toml");
    std::fs::write(&exported, &stdout).expect("write the export");
    let out = strangler(&["check", exported.to_str().expect("utf-8 path")]).await;
    assert!(out.status.success(), "{:?}", text(&out));

    instance.stop().await;
    delete_bucket(&nats, &bucket).await;

    // Without NATS: refused, naming the bucket, the address and what to do; nothing printed.
    let away = commented("nats://127.0.0.1:1", &bucket);
    std::fs::write(&seed, away).expect("write the seed file");
    let out = strangler(&["cluster", "export", "--config", seed_arg]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("127.0.0.1:1") && stderr.contains(&bucket) && stderr.contains("start NATS"),
        "{stderr}"
    );

    // Without [cluster]: refused, saying so.
    let single = commented(&nats, &bucket);
    let single = single
        .split("[cluster]")
        .next()
        .expect("text before [cluster]");
    std::fs::write(&seed, single).expect("write the seed file");
    let out = strangler(&["cluster", "export", "--config", seed_arg]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success() && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no [cluster]"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_redirected_onto_the_file_it_reads_is_refused_with_the_safe_idiom() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("routes.toml");
    std::fs::write(&seed, commented("nats://127.0.0.1:1", "unused")).expect("write the seed");
    // What `strangler cluster export > routes.toml` does: the file is emptied, then is stdout.
    let stdout = std::fs::File::create(&seed).expect("truncate the seed, as the shell does");
    let out = tokio::process::Command::new(system_tests::strangler_bin())
        .args(["cluster", "export", "--config"])
        .arg(&seed)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start strangler")
        .wait_with_output()
        .await
        .expect("run strangler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("emptied") && stderr.contains("routes.new && mv"),
        "{stderr}"
    );
}
