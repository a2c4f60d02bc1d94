#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;

fn options(segment_size: u64) -> Options {
    Options {
        segment_size,
        fsync: Fsync::Never,
        fsync_interval: Duration::from_secs(1),
    }
}

pub(crate) fn event(n: u64) -> Event {
    Event::new(
        "test.counted.v1",
        Some("r"),
        &format!("c{n}"),
        serde_json::json!({ "n": n }),
    )
}

fn read_all(dir: &Path, from: u64) -> Vec<Item> {
    let mut reader = Reader::at_offset(dir, from);
    let mut items = Vec::new();
    while let Some(item) = reader.next_item().unwrap() {
        items.push(item);
    }
    items
}

fn numbers(items: &[Item]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Event(_, e) => e.data.value()["n"].as_u64(),
            _ => None,
        })
        .collect()
}

#[test]
fn writes_rotates_and_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let line = to_line(&event(0)).len() as u64;
    let mut writer = Writer::open(dir.path(), options(line * 3), 0).unwrap();
    for chunk in (0..10).collect::<Vec<_>>().chunks(4) {
        let events: Vec<Event> = chunk.iter().map(|n| event(*n)).collect();
        writer.append(&events).unwrap();
    }
    assert_eq!(writer.next_offset(), 10);
    let names: Vec<u64> = list(dir.path()).unwrap().iter().map(|s| s.0).collect();
    assert_eq!(names, [0, 3, 6, 9]);
    assert_eq!(
        numbers(&read_all(dir.path(), 0)),
        (0..10).collect::<Vec<_>>()
    );
    // Offsets are line numbers across segments.
    let from_seven = read_all(dir.path(), 7);
    assert!(matches!(from_seven[0], Item::Event(7, _)));
    assert_eq!(numbers(&from_seven), [7, 8, 9]);
    assert_eq!(end_offset(dir.path()).unwrap(), 10);

    // A new writer continues where the old one stopped.
    drop(writer);
    let mut writer = Writer::open(dir.path(), options(line * 3), 0).unwrap();
    assert_eq!(writer.next_offset(), 10);
    writer.append(&[event(10)]).unwrap();
    assert_eq!(numbers(&read_all(dir.path(), 9)), [9, 10]);
}

#[test]
fn a_reader_follows_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let line = to_line(&event(0)).len() as u64;
    let mut writer = Writer::open(dir.path(), options(line * 2), 0).unwrap();
    let mut reader = Reader::at_offset(dir.path(), 0);
    assert!(reader.next_item().unwrap().is_none());
    writer.append(&[event(0)]).unwrap();
    assert!(matches!(
        reader.next_item().unwrap(),
        Some(Item::Event(0, _))
    ));
    assert!(reader.next_item().unwrap().is_none());
    writer.append(&[event(1), event(2), event(3)]).unwrap();
    let mut seen = Vec::new();
    while let Some(Item::Event(offset, _)) = reader.next_item().unwrap() {
        seen.push(offset);
    }
    assert_eq!(seen, [1, 2, 3]);
}

#[test]
fn a_torn_last_line_is_skipped_by_readers_and_cut_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Writer::open(dir.path(), options(1 << 20), 0).unwrap();
    writer.append(&[event(0), event(1)]).unwrap();
    drop(writer);
    let path = dir.path().join(segment_name(0));
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"specversion":"1.0","id":"x"#).unwrap();
    drop(file);

    // A reader stops before it (a writer might still finish it)…
    assert_eq!(numbers(&read_all(dir.path(), 0)), [0, 1]);
    assert_eq!(end_offset(dir.path()).unwrap(), 2);
    // …and a newer segment makes it torn for good.
    std::fs::write(dir.path().join(segment_name(2)), to_line(&event(2))).unwrap();
    let items = read_all(dir.path(), 0);
    assert!(items.iter().any(|i| matches!(i, Item::Torn { segment: 0 })));
    assert_eq!(numbers(&items), [0, 1, 2]);
    std::fs::remove_file(dir.path().join(segment_name(2))).unwrap();

    let mut writer = Writer::open(dir.path(), options(1 << 20), 0).unwrap();
    assert_eq!(writer.next_offset(), 2);
    writer.append(&[event(2)]).unwrap();
    let items = read_all(dir.path(), 0);
    assert_eq!(numbers(&items), [0, 1, 2]);
    assert!(items.iter().all(|i| matches!(i, Item::Event(..))));
}

#[test]
fn a_bad_complete_line_is_reported_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = to_line(&event(0));
    text.extend_from_slice(b"not json\n");
    text.extend(to_line(&event(2)));
    std::fs::write(dir.path().join(segment_name(0)), text).unwrap();
    let items = read_all(dir.path(), 0);
    assert!(matches!(items[1], Item::Bad { offset: 1, .. }));
    assert!(matches!(items[2], Item::Event(2, _)));
}

#[test]
fn retention_deletes_closed_segments_by_size_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let line = to_line(&event(0)).len() as u64;
    let mut writer = Writer::open(dir.path(), options(line * 2), 0).unwrap();
    let events: Vec<Event> = (0..8).map(event).collect();
    writer.append(&events).unwrap();
    assert_eq!(list(dir.path()).unwrap().len(), 4);

    // By size: keep at most three segments' worth.
    let removed = writer.retain(Duration::from_secs(3600), line * 6).unwrap();
    assert_eq!(removed, 2);
    assert_eq!(writer.first_offset(), 2);
    let items = read_all(dir.path(), 0);
    assert!(matches!(items[0], Item::Gap { from: 0, to: 2 }));
    assert_eq!(numbers(&items), [2, 3, 4, 5, 6, 7]);

    // By age: everything closed is older than zero seconds; the active segment stays.
    let removed = writer.retain(Duration::ZERO, u64::MAX).unwrap();
    assert_eq!(removed, 4);
    assert_eq!(numbers(&read_all(dir.path(), 0)), [6, 7]);
}

#[test]
fn remove_oldest_closes_the_only_segment_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Writer::open(dir.path(), options(1 << 20), 0).unwrap();
    writer.append(&[event(0), event(1)]).unwrap();
    assert_eq!(writer.remove_oldest().unwrap(), Some((0, 2)));
    assert_eq!(writer.bytes(), 0);
    assert_eq!(writer.remove_oldest().unwrap(), None);
    writer.append(&[event(2)]).unwrap();
    assert_eq!(numbers(&read_all(dir.path(), 2)), [2]);
    assert_eq!(list(dir.path()).unwrap()[0].0, 2);
}

#[test]
fn an_empty_folder_starts_at_the_given_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Writer::open(&dir.path().join("new"), options(1 << 20), 40).unwrap();
    writer.append(&[event(0)]).unwrap();
    assert_eq!(list(&dir.path().join("new")).unwrap()[0].0, 40);
    assert_eq!(writer.next_offset(), 41);
}

#[test]
fn the_fsync_policy_says_when_a_sync_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let with = |fsync: Fsync| Options {
        segment_size: 1 << 20,
        fsync,
        fsync_interval: Duration::from_secs(3600),
    };
    for (fsync, due) in [
        (Fsync::Always, true),
        (Fsync::Interval, false),
        (Fsync::Never, false),
    ] {
        let mut writer = Writer::open(dir.path(), with(fsync), 0).unwrap();
        writer.write_events(&[event(0)]).unwrap();
        assert_eq!(writer.sync_due(), due, "{fsync:?}");
    }
    let mut writer = Writer::open(
        dir.path(),
        Options {
            fsync_interval: Duration::ZERO,
            ..with(Fsync::Interval)
        },
        0,
    )
    .unwrap();
    writer.write_events(&[event(1)]).unwrap();
    assert!(writer.sync_due(), "an interval that has passed");
    assert_eq!(writer.next_offset(), 4, "every write landed");
}
