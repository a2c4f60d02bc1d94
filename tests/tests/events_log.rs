//! Events end to end: a proxy with `[bus] kind = "log"` in front of legacy-shim writes one
//! `exchange.seen` event per request to its log folder, and `strangler events tail` prints
//! them; the real binary killed with SIGKILL while its broker is down keeps the spooled
//! events for the next run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use strangler::events::sink::{ReadFrom, log};
use strangler::events::{Event, types};
use system_tests::wait::eventually;
use system_tests::{Legacy, Proxy, raw_client, routes_toml, strangler_bin};

/// How long the binary may take to print its address.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long events may take to reach the spool.
const SPOOL_DEADLINE: Duration = Duration::from_secs(20);

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

/// A `strangler run` process, killed (SIGKILL) if the test ends before it exits.
struct Running {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Running {
    fn start(config: &Path) -> Self {
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(config.with_file_name("stderr.log"))
            .unwrap();
        let mut child = Command::new(strangler_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn strangler run");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::sync_channel(16);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.try_send(line);
            }
        });
        let line = lines.recv_timeout(START_DEADLINE).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(config.with_file_name("stderr.log"));
            panic!("strangler printed no address ({e}); stderr:\n{log:?}")
        });
        let after = |marker: &str| -> SocketAddr {
            line.split_once(marker)
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        };
        Self {
            addr: after("proxy on http://"),
            admin: after("admin on http://"),
            child,
        }
    }

    async fn stats(&self, client: &reqwest::Client) -> Option<Value> {
        let url = format!("http://{}/admin/events/stats", self.admin);
        client.get(url).send().await.ok()?.json().await.ok()
    }

    async fn requests(&self, client: &reqwest::Client, n: usize) {
        for _ in 0..n {
            let response = client
                .get(format!("http://{}/misc/health", self.addr))
                .send()
                .await
                .unwrap();
            response.bytes().await.unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the running proxy reports at least `n` events pending in its spool.
async fn spool_holds(running: &Running, client: &reqwest::Client, n: u64) -> Value {
    eventually(&format!("{n} events spooled"), SPOOL_DEADLINE, || async {
        let stats = running.stats(client).await?;
        (stats["spool_pending"].as_u64()? >= n).then_some(stats)
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
    first.requests(&client, 30).await;
    let stats = spool_holds(&first, &client, 30).await;
    assert_eq!(stats["kind"], "nats");
    assert_eq!(stats["published"], 0);
    assert_eq!(stats["circuit"], "open");
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let spooled = read_log(&dir.path().join("spool"));
    assert!(spooled.len() >= 30, "{} events in the spool", spooled.len());

    // The broker is still down: the next run keeps them, and adds its own behind them.
    let second = Running::start(&config);
    spool_holds(&second, &client, spooled.len() as u64).await;
    second.requests(&client, 5).await;
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
