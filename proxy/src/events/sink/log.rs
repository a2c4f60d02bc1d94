//! The embedded event log: append-only JSON-lines segments in a local folder (`[bus] path`),
//! rotated at `segment_size`, deleted past `retention` or `max_size`, synced by `fsync`.
//!
//! The log is its own durable store, so the publisher keeps no spool in front of it; a write
//! that fails (a full disk) is reported to the publisher, which counts and logs it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::{ReadFrom, SinkError, blocking};
use crate::config::BusConfig;
use crate::config::DEFAULT_BUS_PATH;
use crate::events::Event;
use crate::events::segment::{self, Item, Options, Reader, Writer};

/// How often retention runs at most.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// The writer and its housekeeping clock.
#[derive(Debug)]
struct State {
    writer: Writer,
    last_retention: Instant,
}

/// An open event log.
#[derive(Debug)]
pub struct LogSink {
    dir: PathBuf,
    retention: Duration,
    max_size: u64,
    /// Held only for one batch's disk write, never across an `.await`.
    state: Mutex<State>,
}

/// The log folder `bus` names, resolved against `base_dir`.
pub fn folder(bus: &BusConfig, base_dir: &Path) -> PathBuf {
    base_dir.join(bus.path.as_deref().unwrap_or(DEFAULT_BUS_PATH))
}

/// The segment options of `bus`.
pub fn options(bus: &BusConfig) -> Options {
    Options {
        segment_size: bus.segment_size.bytes(),
        fsync: bus.fsync,
        fsync_interval: bus.fsync_interval,
    }
}

impl LogSink {
    /// Opens (creating) the log folder `bus.path` and applies retention.
    pub fn open(bus: &BusConfig, base_dir: &Path) -> Result<Self, SinkError> {
        let dir = folder(bus, base_dir);
        Self::open_dir(&dir, bus)
    }

    /// Opens the log in `dir` with `bus`'s sizes and policies.
    pub fn open_dir(dir: &Path, bus: &BusConfig) -> Result<Self, SinkError> {
        let mut writer =
            Writer::open(dir, options(bus), 0).map_err(|e| SinkError::Rejected(e.to_string()))?;
        if let Err(e) = writer.retain(bus.retention, bus.max_size.bytes()) {
            tracing::warn!(error = %e, "event log retention failed");
        }
        Ok(Self {
            dir: dir.to_owned(),
            retention: bus.retention,
            max_size: bus.max_size.bytes(),
            state: Mutex::new(State {
                writer,
                last_retention: Instant::now(),
            }),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `batch`; `Ok` once it is written (and synced, with `fsync = "always"`).
    ///
    /// The write itself runs on the calling task: it only reaches the page cache, as nginx
    /// writes its access log from its event loop. Handing the worker's other tasks to another
    /// thread for it (`block_in_place`) cost a thread wake-up and several context switches
    /// per batch; that is kept for the sync, which waits for the disk.
    pub async fn publish(&self, batch: &[Event]) -> Result<(), SinkError> {
        let mut state = self.lock();
        let writer = &mut state.writer;
        writer
            .write_events(batch)
            .and_then(|()| {
                if writer.sync_due() {
                    blocking(|| writer.sync())
                } else {
                    Ok(())
                }
            })
            .map_err(|e| SinkError::Unavailable(e.to_string()))
    }

    /// Up to `limit` events from `from` on, oldest first; damaged lines are skipped.
    pub async fn read(&self, from: ReadFrom, limit: usize) -> Result<Vec<Event>, SinkError> {
        blocking(|| read(&self.dir, from, limit)).map_err(|e| SinkError::Unavailable(e.to_string()))
    }

    /// Syncs when due; applies retention at most once a minute.
    pub fn maintain(&self) {
        blocking(|| {
            let mut state = self.lock();
            if let Err(e) = state.writer.sync_if_due() {
                tracing::warn!(error = %e, "cannot sync the event log");
            }
            if state.last_retention.elapsed() >= RETENTION_EVERY {
                state.last_retention = Instant::now();
                match state.writer.retain(self.retention, self.max_size) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(events = n, "event log retention deleted old segments")
                    }
                    Err(e) => tracing::warn!(error = %e, "event log retention failed"),
                }
            }
        });
    }

    /// Syncs everything written.
    pub fn flush(&self) {
        blocking(|| {
            if let Err(e) = self.lock().writer.sync() {
                tracing::warn!(error = %e, "cannot sync the event log");
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a writer whose state is still consistent
        // (every write either completed or was cut back).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Up to `limit` events of the log in `dir` from `from` on.
pub fn read(dir: &Path, from: ReadFrom, limit: usize) -> Result<Vec<Event>, segment::SegmentError> {
    let (mut reader, since) = match from {
        ReadFrom::Start => (Reader::at_offset(dir, 0), None),
        ReadFrom::Offset(offset) => (Reader::at_offset(dir, offset), None),
        ReadFrom::Tail(n) => {
            let end = segment::end_offset(dir)?;
            (Reader::at_offset(dir, end.saturating_sub(n as u64)), None)
        }
        ReadFrom::Time(time) => (Reader::at_time(dir, time)?, Some(time)),
    };
    let mut events = Vec::new();
    while events.len() < limit {
        match reader.next_item()? {
            None => break,
            Some(Item::Event(_, event)) if since.is_none_or(|t| !happened_before(&event, t)) => {
                events.push(event);
            }
            Some(_) => {}
        }
    }
    Ok(events)
}

/// Whether `event` is dated before `time` (an unreadable date is not).
pub fn happened_before(event: &Event, time: SystemTime) -> bool {
    humantime::parse_rfc3339_weak(&event.time).is_ok_and(|t| t < time)
}
