#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::events::segment::tests::event;
use crate::events::sink::ReadFrom;

#[tokio::test]
async fn a_disabled_publisher_takes_everything_and_does_nothing() {
    let publisher = Publisher::disabled();
    assert!(!publisher.is_enabled());
    assert!(!publisher.publishes_exchanges());
    publisher.publish(event(0));
    assert_eq!(publisher.stats(), Stats::default());
    assert!(publisher.recent(10).is_empty());
    publisher.close().await;
}

#[tokio::test]
async fn a_log_publisher_writes_stamped_events_and_remembers_recent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bus = BusConfig {
        kind: BusKind::Log,
        path: Some("events".into()),
        ..BusConfig::default()
    };
    let publisher = Publisher::start(&bus, dir.path()).unwrap();
    assert!(publisher.publishes_exchanges());
    let total = RECENT as u64 + 10;
    for n in 0..total {
        publisher.publish(event(n));
        if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    publisher.close().await;
    assert_eq!(publisher.stats().published, total);
    let recent = publisher.recent(1000);
    assert_eq!(recent.len(), RECENT);
    assert_eq!(recent[0].data.value()["n"], 10);
    assert_eq!(publisher.recent(2)[1].data.value()["n"], total - 1);
    let events = log::read(&dir.path().join("events"), ReadFrom::Start, 10_000).unwrap();
    assert_eq!(events.len() as u64, total);
    assert!(
        events[0].source.starts_with("strangler://"),
        "{}",
        events[0].source
    );
}

#[tokio::test]
async fn an_unusable_log_folder_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let bus = BusConfig {
        kind: BusKind::Log,
        path: Some("file/events".into()),
        ..BusConfig::default()
    };
    let error = Publisher::start(&bus, dir.path()).unwrap_err();
    assert!(error.to_string().contains("[bus] path"), "{error}");
}

#[tokio::test]
async fn events_waiting_for_the_pump_count_as_queued() {
    let dir = tempfile::tempdir().unwrap();
    let bus = BusConfig {
        kind: BusKind::Log,
        path: Some("events".into()),
        ..BusConfig::default()
    };
    let publisher = Publisher::start(&bus, dir.path()).unwrap();
    // A current-thread runtime: the pump cannot run until this task yields.
    for n in 0..5 {
        publisher.publish(event(n));
    }
    assert_eq!(publisher.stats().queued, 5);
    publisher.close().await;
    let stats = publisher.stats();
    assert_eq!((stats.queued, stats.published), (0, 5));
}
