//! The pump against an in-process fake sink that fails, stalls and recovers on command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Mutex;

use super::*;
use crate::config::{BusConfig, Fsync, OnFull};
use crate::events::Publisher;
use crate::events::segment::tests::event;
use crate::events::segment::{self, Options};

/// What the fake sink got and how it behaves.
#[derive(Debug, Default)]
struct FakeState {
    /// The next deliveries that fail as unavailable.
    fail_next: usize,
    /// Fail everything.
    down: bool,
    /// Each delivery takes this long.
    delay: Duration,
    delivered: Vec<Event>,
    calls: usize,
}

#[derive(Debug, Clone, Default)]
struct Fake(Arc<Mutex<FakeState>>);

impl Fake {
    fn with(f: impl FnOnce(&mut FakeState)) -> Self {
        let fake = Self::default();
        f(&mut fake.0.lock().unwrap());
        fake
    }

    fn delivered(&self) -> Vec<u64> {
        let state = self.0.lock().unwrap();
        state
            .delivered
            .iter()
            .filter_map(|e| e.data.value()["n"].as_u64())
            .collect()
    }

    fn set(&self, f: impl FnOnce(&mut FakeState)) {
        f(&mut self.0.lock().unwrap());
    }
}

impl Deliver for Fake {
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let delay = self.0.lock().unwrap().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.0.lock().unwrap();
        state.calls += 1;
        if state.down {
            return Err(SinkError::Unavailable("down".into()));
        }
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(SinkError::Unavailable("not yet".into()));
        }
        state.delivered.extend_from_slice(batch);
        Ok(())
    }
}

fn limits() -> Limits {
    Limits {
        publish: Duration::from_secs(2),
        spill_after: Duration::from_millis(20),
        shutdown: Duration::from_secs(1),
        tick: Duration::from_millis(50),
        backoff: Backoff {
            min: Duration::from_millis(2),
            max: Duration::from_millis(20),
        },
    }
}

fn bus(channel: usize, batch: usize) -> BusConfig {
    BusConfig {
        channel,
        batch,
        ..BusConfig::default()
    }
}

fn spool(dir: &Path, max: u64, on_full: OnFull) -> Spool {
    let options = Options {
        segment_size: 4096,
        fsync: Fsync::Never,
        fsync_interval: Duration::from_secs(1),
    };
    Spool::open(dir, options, max, on_full).unwrap()
}

/// Polls `done` until it holds (bounded).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

fn spooled_numbers(dir: &Path) -> Vec<u64> {
    let mut spool = spool(dir, 1 << 30, OnFull::DropNewest);
    let mut all = Vec::new();
    loop {
        let batch: Vec<u64> = spool
            .peek(100)
            .unwrap()
            .iter()
            .filter_map(|e| e.data.value()["n"].as_u64())
            .collect();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
        spool.ack().unwrap();
    }
}

#[tokio::test]
async fn a_sink_that_fails_then_recovers_gets_everything_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::with(|s| s.fail_next = 5);
    let spool = spool(dir.path(), 1 << 20, OnFull::DropNewest);
    let publisher = Publisher::start_with(&bus(64, 8), fake.clone(), Some(spool), limits());
    for n in 0..300 {
        publisher.publish(event(n));
        if n % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    until("all delivered", || fake.delivered().len() >= 300).await;
    until("spool drained", || publisher.stats().spool_pending == 0).await;
    publisher.close().await;
    assert_eq!(fake.delivered(), (0..300).collect::<Vec<_>>());
    let stats = publisher.stats();
    assert!(stats.spooled > 0, "{stats:?}");
    assert_eq!(stats.published + stats.replayed, 300, "{stats:?}");
    assert_eq!(stats.dropped_channel_full + stats.dropped_spool_full, 0);
    assert_eq!(stats.circuit, CircuitState::Closed);
}

#[tokio::test]
async fn a_slow_sink_spills_to_the_spool_instead_of_filling_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::with(|s| s.delay = Duration::from_millis(200));
    let spool = spool(dir.path(), 1 << 20, OnFull::DropNewest);
    let publisher = Publisher::start_with(&bus(8, 4), fake.clone(), Some(spool), limits());
    publisher.publish(event(0));
    tokio::time::sleep(Duration::from_millis(60)).await;
    // The first delivery is in flight and past spill_after: the rest goes to the spool.
    for n in 1..100 {
        publisher.publish(event(n));
        tokio::task::yield_now().await;
    }
    fake.set(|s| s.delay = Duration::ZERO);
    until("all delivered", || fake.delivered().len() >= 100).await;
    publisher.close().await;
    let stats = publisher.stats();
    assert_eq!(fake.delivered(), (0..100).collect::<Vec<_>>(), "{stats:?}");
    assert_eq!(stats.dropped_channel_full, 0, "{stats:?}");
    assert!(stats.spooled > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn events_from_tasks_ready_together_are_delivered_in_one_batch() {
    let fake = Fake::default();
    let publisher = Arc::new(Publisher::start_with(
        &bus(64, 16),
        fake.clone(),
        None,
        limits(),
    ));
    tokio::time::sleep(Duration::from_millis(20)).await; // the pump waits on its channel
    // One task on the worker spawns eight exchanges' ends: the first one's event wakes the
    // pump, which the scheduler would run next, before the other seven.
    let spawner = publisher.clone();
    tokio::spawn(async move {
        for n in 0..8 {
            let publisher = spawner.clone();
            tokio::spawn(async move { publisher.publish(event(n)) });
        }
    })
    .await
    .unwrap();
    until("all delivered", || fake.delivered().len() >= 8).await;
    let mut delivered = fake.delivered();
    delivered.sort_unstable(); // the tasks ran in the scheduler's order
    assert_eq!(delivered, (0..8).collect::<Vec<_>>());
    assert_eq!(fake.0.lock().unwrap().calls, 1, "one batch for all eight");
}

#[tokio::test]
async fn a_full_channel_drops_and_counts() {
    let fake = Fake::default();
    let publisher = Publisher::start_with(&bus(4, 2), fake.clone(), None, limits());
    // The pump cannot run between these calls (one thread): four fit, the rest is dropped.
    for n in 0..100 {
        publisher.publish(event(n));
    }
    assert_eq!(publisher.stats().dropped_channel_full, 96);
    publisher.close().await;
    assert_eq!(fake.delivered(), [0, 1, 2, 3]);
    // After close, publishing is a counted drop too.
    publisher.publish(event(100));
    assert_eq!(publisher.stats().dropped_channel_full, 97);
    assert_eq!(publisher.recent(10).len(), 4);
}

#[tokio::test]
async fn shutdown_flushes_the_channel_to_the_sink() {
    let fake = Fake::default();
    let publisher = Publisher::start_with(&bus(256, 16), fake.clone(), None, limits());
    for n in 0..200 {
        publisher.publish(event(n));
    }
    publisher.close().await;
    assert_eq!(fake.delivered(), (0..200).collect::<Vec<_>>());
    assert_eq!(publisher.stats().published, 200);
}

#[tokio::test]
async fn shutdown_flushes_to_the_spool_when_the_sink_is_down_and_a_restart_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    let down = Fake::with(|s| s.down = true);
    let first = spool(dir.path(), 1 << 20, OnFull::DropNewest);
    let publisher = Publisher::start_with(&bus(256, 16), down.clone(), Some(first), limits());
    for n in 0..50 {
        publisher.publish(event(n));
    }
    tokio::task::yield_now().await;
    for n in 50..120 {
        publisher.publish(event(n));
    }
    publisher.close().await;
    let stats = publisher.stats();
    assert_eq!(stats.spool_pending, 120, "{stats:?}");
    assert!(down.delivered().is_empty());

    // The next run sends the spool first, then what is new, in order.
    let up = Fake::default();
    let again = spool(dir.path(), 1 << 20, OnFull::DropNewest);
    let publisher = Publisher::start_with(&bus(256, 16), up.clone(), Some(again), limits());
    for n in 120..130 {
        publisher.publish(event(n));
    }
    until("all delivered", || up.delivered().len() >= 130).await;
    publisher.close().await;
    assert_eq!(up.delivered(), (0..130).collect::<Vec<_>>());
    assert_eq!(publisher.stats().replayed, 130);
    assert!(spooled_numbers(dir.path()).is_empty());
}

/// Publishes `total` events to a sink that is down, with a small spool; returns what the
/// spool kept and the stats.
async fn fill_spool(on_full: OnFull, total: u64) -> (Vec<u64>, crate::events::Stats, u64) {
    let dir = tempfile::tempdir().unwrap();
    let line = segment::to_line(&event(0)).len() as u64;
    let max = line * 100;
    let down = Fake::with(|s| s.down = true);
    let small = spool(dir.path(), max, on_full);
    let publisher = Publisher::start_with(&bus(64, 8), down, Some(small), limits());
    for n in 0..total {
        publisher.publish(event(n));
        if n % 8 == 0 {
            tokio::task::yield_now().await;
        }
    }
    publisher.close().await;
    let bytes: u64 = segment::list(dir.path())
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        bytes <= max,
        "the spool holds {bytes} bytes, more than {max}"
    );
    (spooled_numbers(dir.path()), publisher.stats(), line)
}

#[tokio::test]
async fn a_full_spool_drops_the_newest_and_counts_them() {
    let (kept, stats, _) = fill_spool(OnFull::DropNewest, 400).await;
    assert_eq!(stats.dropped_channel_full, 0, "{stats:?}");
    assert_eq!(
        kept.len() as u64 + stats.dropped_spool_full,
        400,
        "{stats:?}"
    );
    assert!(stats.dropped_spool_full >= 300, "{stats:?}");
    // The oldest stayed, in order.
    assert_eq!(kept, (0..kept.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_full_spool_drops_the_oldest_and_counts_them() {
    let (kept, stats, _) = fill_spool(OnFull::DropOldest, 400).await;
    assert_eq!(stats.dropped_channel_full, 0, "{stats:?}");
    assert_eq!(
        kept.len() as u64 + stats.dropped_spool_full,
        400,
        "{stats:?}"
    );
    // The newest stayed, in order.
    let first = 400 - kept.len() as u64;
    assert_eq!(kept, (first..400).collect::<Vec<_>>());
}
