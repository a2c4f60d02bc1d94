#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::events::segment::{Options, Writer};

fn event(n: u64, kind: &str, route: &str) -> Event {
    let mut event = Event::new(
        kind,
        Some(route),
        &format!("corr-{n}"),
        serde_json::json!({ "n": n, "method": "GET", "path": "/a b", "nested": { "x": 1 } }),
    );
    event.source = "strangler://test".into();
    event
}

fn log_bus(path: &str) -> BusConfig {
    BusConfig {
        kind: BusKind::Log,
        path: Some(path.into()),
        ..BusConfig::default()
    }
}

/// A log folder `events` under `dir` with 30 events, alternating types and routes.
fn write_log(dir: &Path) -> Vec<Event> {
    let bus = log_bus("events");
    let options = Options {
        segment_size: 2048,
        ..log::options(&bus)
    };
    let mut writer = Writer::open(&dir.join("events"), options, 0).unwrap();
    let events: Vec<Event> = (0..30)
        .map(|n| {
            let (kind, route) = if n % 2 == 0 {
                ("strangler.exchange.seen.v1", "orders")
            } else {
                ("strangler.shadow.compared.v1", "thumbs")
            };
            event(n, kind, route)
        })
        .collect();
    writer.append(&events).unwrap();
    events
}

async fn tail_lines(dir: &Path, filter: Filter, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    tail(&log_bus("events"), dir, &filter, limit, false, &mut out)
        .await
        .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn tail_prints_the_latest_events_of_a_log_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let lines = tail_lines(dir.path(), Filter::default(), 5).await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[4].contains("corr-29"), "{}", lines[4]);
    assert!(lines[4].contains("strangler.shadow.compared.v1"));
    assert!(lines[4].contains("thumbs"));
    assert!(lines[4].contains("n=29"), "{}", lines[4]);
    assert!(lines[4].contains("path=\"/a b\""), "{}", lines[4]);
    assert!(lines[4].contains("nested={1 keys}"), "{}", lines[4]);

    let filter = Filter {
        kind: Some("strangler.exchange".into()),
        route: None,
    };
    let lines = tail_lines(dir.path(), filter, 3).await;
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.contains("orders")), "{lines:?}");
    assert!(lines[2].contains("corr-28"));

    let filter = Filter {
        kind: None,
        route: Some("thumbs".into()),
    };
    assert_eq!(tail_lines(dir.path(), filter, 100).await.len(), 15);
}

#[tokio::test]
async fn replay_copies_a_log_to_another_log_with_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_log(dir.path());
    let bus = log_bus("events");
    let target = target_bus(
        &bus,
        dir.path(),
        Target::Log,
        None,
        Some(dir.path().join("copy")),
    )
    .unwrap();
    replay(
        &bus,
        dir.path(),
        ReadFrom::Offset(10),
        &Filter::default(),
        &target,
        1000,
    )
    .await
    .unwrap();
    let copied = log::read(&dir.path().join("copy"), ReadFrom::Start, 1000).unwrap();
    assert_eq!(copied, written[10..]);

    // With a filter and a time: only matching events from then on.
    let since = humantime::parse_rfc3339_weak(&written[20].time).unwrap();
    let target = target_bus(
        &bus,
        dir.path(),
        Target::Log,
        None,
        Some(dir.path().join("two")),
    )
    .unwrap();
    let filter = Filter {
        kind: None,
        route: Some("orders".into()),
    };
    replay(
        &bus,
        dir.path(),
        ReadFrom::Time(since),
        &filter,
        &target,
        1000,
    )
    .await
    .unwrap();
    let copied = log::read(&dir.path().join("two"), ReadFrom::Start, 1000).unwrap();
    assert!(!copied.is_empty());
    assert!(
        copied
            .iter()
            .all(|e| e.subject.as_deref() == Some("orders"))
    );
    assert!(copied.iter().all(|e| e.time >= written[20].time));
}

#[test]
fn replay_refuses_its_own_source_and_needs_a_url_for_another_kind() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let bus = log_bus("events");
    let same = target_bus(&bus, dir.path(), Target::Log, None, None).unwrap_err();
    assert!(same.to_string().contains("duplicate"), "{same}");
    let nats = target_bus(&bus, dir.path(), Target::Nats, None, None).unwrap_err();
    assert!(nats.to_string().contains("--url"), "{nats}");
    let ok = target_bus(
        &bus,
        dir.path(),
        Target::Nats,
        Some("nats://127.0.0.1:4222".into()),
        None,
    );
    assert_eq!(ok.unwrap().kind, BusKind::Nats);
}

#[test]
fn from_takes_an_offset_a_time_or_an_age() {
    assert_eq!(parse_from("1200").unwrap(), ReadFrom::Offset(1200));
    assert!(matches!(
        parse_from("2025-01-31T12:00:00Z").unwrap(),
        ReadFrom::Time(_)
    ));
    let ReadFrom::Time(hour_ago) = parse_from("1h").unwrap() else {
        panic!("an age is a time");
    };
    assert!(hour_ago < SystemTime::now());
    assert!(parse_from("yesterday-ish").is_err());
}

#[test]
fn summaries_are_cut() {
    let long = serde_json::json!({ "text": "x".repeat(500) });
    assert_eq!(summary(&long).chars().count(), SUMMARY_WIDTH);
    assert_eq!(summary(&serde_json::json!({"a": [1, 2]})), "a=[2 items]");
}
