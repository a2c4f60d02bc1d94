#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;
use crate::events::segment::tests::event;

fn options(segment_size: u64) -> Options {
    Options {
        segment_size,
        fsync: Fsync::Never,
        fsync_interval: Duration::from_secs(1),
    }
}

fn line_len() -> u64 {
    segment::to_line(&event(0)).len() as u64
}

fn numbers(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| e.data.value()["n"].as_u64())
        .collect()
}

fn drain(spool: &mut Spool) -> Vec<u64> {
    let mut all = Vec::new();
    loop {
        let batch = numbers(spool.peek(3).unwrap());
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
        spool.ack().unwrap();
    }
}

#[test]
fn the_cursor_survives_a_restart_and_unacked_events_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), options(1 << 20), 1 << 20, OnFull::DropNewest).unwrap();
    let events: Vec<Event> = (0..10).map(event).collect();
    assert_eq!(spool.append(&events).unwrap().written, 10);
    assert_eq!(numbers(spool.peek(4).unwrap()), [0, 1, 2, 3]);
    spool.ack().unwrap();
    // Read but not acknowledged: must come back after a crash.
    assert_eq!(numbers(spool.peek(4).unwrap()), [4, 5, 6, 7]);
    assert_eq!(spool.len(), 6);
    drop(spool); // kill -9: nothing more is written

    let mut spool = Spool::open(dir.path(), options(1 << 20), 1 << 20, OnFull::DropNewest).unwrap();
    assert_eq!(spool.len(), 6);
    assert_eq!(drain(&mut spool), [4, 5, 6, 7, 8, 9]);
    assert!(spool.is_empty());
    // Drained: the segments are gone, offsets go on.
    assert_eq!(segment::list(dir.path()).unwrap().len(), 0);
    spool.append(&[event(10)]).unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path(), options(1 << 20), 1 << 20, OnFull::DropNewest).unwrap();
    assert_eq!(drain(&mut spool), [10]);
}

#[test]
fn acknowledged_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(
        dir.path(),
        options(line_len() * 2),
        1 << 20,
        OnFull::DropNewest,
    )
    .unwrap();
    spool
        .append(&(0..6).map(event).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(segment::list(dir.path()).unwrap().len(), 3);
    spool.peek(3).unwrap();
    spool.ack().unwrap();
    // Offsets 0..3 are acknowledged: the first segment (0, 1) goes, the second holds 3.
    let firsts: Vec<u64> = segment::list(dir.path())
        .unwrap()
        .iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(firsts, [2, 4]);
}

#[test]
fn skip_acknowledges_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), options(1 << 20), 1 << 20, OnFull::DropNewest).unwrap();
    spool
        .append(&(0..5).map(event).collect::<Vec<_>>())
        .unwrap();
    spool.skip(2).unwrap();
    assert_eq!(drain(&mut spool), [2, 3, 4]);
}

#[test]
fn drop_newest_keeps_what_is_spooled_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let line = line_len();
    let mut spool =
        Spool::open(dir.path(), options(line * 2), line * 5, OnFull::DropNewest).unwrap();
    let appended = spool
        .append(&(0..4).map(event).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        appended,
        Appended {
            written: 4,
            dropped: 0
        }
    );
    let appended = spool
        .append(&(4..8).map(event).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        appended,
        Appended {
            written: 1,
            dropped: 3
        }
    );
    assert!(spool.bytes() <= line * 5);
    assert_eq!(drain(&mut spool), [0, 1, 2, 3, 4]);
}

#[test]
fn drop_oldest_makes_room_segment_by_segment_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let line = line_len();
    let mut spool =
        Spool::open(dir.path(), options(line * 2), line * 4, OnFull::DropOldest).unwrap();
    spool
        .append(&(0..4).map(event).collect::<Vec<_>>())
        .unwrap();
    // A batch read but not acknowledged is dropped too when its segment goes.
    assert_eq!(numbers(spool.peek(1).unwrap()), [0]);
    let appended = spool
        .append(&(4..7).map(event).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        appended,
        Appended {
            written: 3,
            dropped: 4
        }
    );
    assert!(spool.bytes() <= line * 4);
    assert_eq!(drain(&mut spool), [4, 5, 6]);

    // The cursor moved past what was dropped, also for the next run.
    spool
        .append(&(7..9).map(event).collect::<Vec<_>>())
        .unwrap();
    drop(spool);
    let mut spool =
        Spool::open(dir.path(), options(line * 2), line * 4, OnFull::DropOldest).unwrap();
    assert_eq!(drain(&mut spool), [7, 8]);

    // A batch larger than the whole cap keeps what fits.
    let appended = spool
        .append(&(0..6).map(event).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        appended,
        Appended {
            written: 4,
            dropped: 2
        }
    );
}

#[test]
fn a_damaged_cursor_resends_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), options(1 << 20), 1 << 20, OnFull::DropNewest).unwrap();
    spool
        .append(&(0..3).map(event).collect::<Vec<_>>())
        .unwrap();
    spool.peek(1).unwrap();
    spool.ack().unwrap();
    drop(spool);
    std::fs::write(dir.path().join(CURSOR), "garbage").unwrap();
    let mut spool = Spool::open(dir.path(), options(1 << 20), 1 << 20, OnFull::DropNewest).unwrap();
    assert_eq!(drain(&mut spool), [0, 1, 2]);
}
