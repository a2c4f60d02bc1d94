//! Events end to end: a proxy with `[bus] kind = "log"` in front of legacy-shim writes one
//! `exchange.seen` event per request to its log folder, and `strangler events tail` prints
//! them; the real binary killed with SIGKILL while its broker is down keeps the spooled
//! events for the next run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strangler::events::sink::{ReadFrom, log};
use strangler::events::{Event, types};
use system_tests::running::Running;
use system_tests::wait::eventually;
use system_tests::{Legacy, Proxy, raw_client, routes_toml, strangler_bin};

fn read_log(dir: &Path) -> Vec<Event> {
    log::read(dir, ReadFrom::Start, 100_000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_lands_in_the_log_and_tail_prints_it() {
    let legacy = Legacy::stable().await;
    let bus = "[bus]\nkind = \"log\"\npath = \"events\"\nfsync = \"never\"\n";
    let proxy = Proxy::start(&routes_toml(&legacy.url(), bus)).await;
    let client = raw_client();
    for _ in 0..200 {
        let response = client
            .get(format!("{}/misc/health", proxy.url()))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
    }
    let admin = proxy.admin_url();
    let Proxy { handle, dir } = proxy;
    // The stats are live while the proxy runs.
    let stats: Value = eventually("200 events published", Duration::from_secs(10), || {
        let client = client.clone();
        let admin = admin.clone();
        async move {
            let stats: Value = client
                .get(format!("{admin}/admin/events/stats"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (stats["published"].as_u64()? >= 200).then_some(stats)
        }
    })
    .await;
    assert_eq!(stats["kind"], "log");
    assert_eq!(stats["dropped_channel_full"], 0);
    let recent: Value = client
        .get(format!("{admin}/admin/events/recent?limit=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recent["events"].as_array().unwrap().len(), 3);
    handle.shutdown().await;

    let events = read_log(&dir.path().join("events"));
    let exchanges: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == types::EXCHANGE_SEEN)
        .collect();
    assert_eq!(exchanges.len(), 200, "{} events in the log", events.len());
    let mut ids: Vec<&str> = exchanges.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every event has its own id");
    assert!(
        exchanges
            .iter()
            .all(|e| e.source.starts_with("strangler://"))
    );

    let output = Command::new(strangler_bin())
        .args(["events", "tail", "--limit", "1000", "--type"])
        .arg(types::EXCHANGE_SEEN)
        .arg("--config")
        .arg(dir.path().join("routes.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 200, "{stdout}");
    assert!(lines.iter().all(|l| l.contains(types::EXCHANGE_SEEN)));
    assert!(
        lines[199].contains(&exchanges[199].correlationid),
        "{}",
        lines[199]
    );
    legacy.stop().await;
}

/// Waits until the running proxy reports at least `n` events pending in its spool.
async fn spool_holds(running: &Running, client: &reqwest::Client, n: u64) -> Value {
    running
        .stats_until(client, &format!("{n} events spooled"), |stats| {
            stats["spool_pending"]
                .as_u64()
                .is_some_and(|pending| pending >= n)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_spooled_before_a_kill_9_are_still_there_after_a_restart() {
    let legacy = Legacy::stable().await;
    // A broker address nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let bus = format!(
        "[bus]\nkind = \"nats\"\nurl = \"nats://127.0.0.1:{port}\"\nspool = \"spool\"\nfsync = \"never\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes_toml(&legacy.url(), &bus)).unwrap();
    let client = raw_client();

    let mut first = Running::start(&config);
    first.requests(&client, "/misc/health", 30).await;
    let stats = spool_holds(&first, &client, 30).await;
    assert_eq!(stats["kind"], "nats");
    assert_eq!(stats["published"], 0);
    assert_eq!(stats["circuit"], "open");
    first.kill_9();

    let spooled = read_log(&dir.path().join("spool"));
    assert!(spooled.len() >= 30, "{} events in the spool", spooled.len());

    // The broker is still down: the next run keeps them, and adds its own behind them.
    let second = Running::start(&config);
    spool_holds(&second, &client, spooled.len() as u64).await;
    second.requests(&client, "/misc/health", 5).await;
    spool_holds(&second, &client, spooled.len() as u64 + 5).await;
    drop(second);
    let after = read_log(&dir.path().join("spool"));
    assert_eq!(
        after[..spooled.len()],
        spooled[..],
        "the first run's events, in order"
    );
    legacy.stop().await;
}
