//! The disk spool: events the broker has not acknowledged yet, oldest first.
//!
//! Same segment format as the event log, plus a persisted read cursor (the file `cursor`:
//! the offset of the oldest event not acknowledged). An event leaves the spool only after the
//! sink acknowledged it, and the cursor is written after that acknowledgement, so a crash in
//! between resends it: at-least-once, deduplicated downstream by the event id.
//!
//! The spool never grows past `spool_max`: `on_full = "drop_newest"` refuses what does not
//! fit, `"drop_oldest"` deletes the oldest segment to make room. Either way the caller gets
//! the number dropped, to count and log. Memory holds at most one batch read ahead.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::Event;
use super::segment::{self, Item, Options, Reader, SegmentError, Writer};
use crate::config::{Fsync, OnFull};

/// The name of the cursor file in the spool folder.
const CURSOR: &str = "cursor";

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    /// Events written.
    pub written: u64,
    /// Events dropped to respect the cap (new ones or old ones, by policy).
    pub dropped: u64,
}

/// A batch read from the spool, waiting for the sink.
#[derive(Debug, Default)]
struct Pending {
    events: Vec<Event>,
    /// Offset after the batch (lines that were not events included).
    end: u64,
    /// Lines that were not events (a damaged spool), skipped when acknowledged.
    bad: u64,
}

/// The spool of one publisher.
#[derive(Debug)]
pub struct Spool {
    writer: Writer,
    /// Oldest offset not acknowledged.
    cursor: u64,
    /// Positioned after `pending` (created on first read).
    reader: Option<Reader>,
    pending: Pending,
    max_bytes: u64,
    on_full: OnFull,
    /// Whether the cursor file is synced too.
    fsync: Fsync,
}

impl Spool {
    /// Opens (creating) the spool in `dir`; what an earlier run left unacknowledged is there
    /// again.
    pub fn open(
        dir: &Path,
        options: Options,
        max_bytes: u64,
        on_full: OnFull,
    ) -> Result<Self, SegmentError> {
        let saved = read_cursor(dir)?;
        let mut writer = Writer::open(dir, options, saved.unwrap_or(0))?;
        let cursor = saved
            .unwrap_or(0)
            .clamp(writer.first_offset(), writer.next_offset());
        writer.remove_before(cursor)?;
        let spool = Self {
            writer,
            cursor,
            reader: None,
            pending: Pending::default(),
            max_bytes,
            on_full,
            fsync: options.fsync,
        };
        if !spool.is_empty() {
            tracing::info!(
                spool = %dir.display(),
                events = spool.len(),
                "the spool holds events from an earlier run; they are sent first"
            );
        }
        Ok(spool)
    }

    /// Events not acknowledged yet.
    pub fn len(&self) -> u64 {
        self.writer.next_offset() - self.cursor
    }

    /// Whether every spooled event was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.writer.bytes()
    }

    /// Appends `events` after everything spooled, within the cap.
    pub fn append(&mut self, events: &[Event]) -> Result<Appended, SegmentError> {
        let mut lines: Vec<Vec<u8>> = events.iter().map(segment::to_line).collect();
        let needed: u64 = lines.iter().map(|l| l.len() as u64).sum();
        let mut dropped = 0;
        if self.on_full == OnFull::DropOldest {
            while self.bytes() + needed > self.max_bytes {
                let Some((first, end)) = self.writer.remove_oldest()? else {
                    break;
                };
                dropped += end.saturating_sub(first.max(self.cursor));
                if self.cursor < end {
                    self.cursor = end;
                    self.forget_read();
                    self.save_cursor()?;
                }
            }
        }
        // What still does not fit is refused (with drop_oldest: a batch larger than the cap).
        let mut room = self.max_bytes.saturating_sub(self.bytes());
        let fits = lines
            .iter()
            .take_while(|l| match room.checked_sub(l.len() as u64) {
                Some(rest) => {
                    room = rest;
                    true
                }
                None => false,
            })
            .count();
        dropped += (lines.len() - fits) as u64;
        lines.truncate(fits);
        self.writer.append_lines(&lines)?;
        Ok(Appended {
            written: fits as u64,
            dropped,
        })
    }

    /// The oldest unacknowledged events, at most `limit`: the same batch until [`Spool::ack`].
    pub fn peek(&mut self, limit: usize) -> Result<&[Event], SegmentError> {
        if self.pending.events.is_empty() {
            self.pending.end = self.cursor;
            self.pending.bad = 0;
            let reader = self
                .reader
                .get_or_insert_with(|| Reader::at_offset(self.writer.dir(), self.cursor));
            while self.pending.events.len() < limit {
                match reader.next_item()? {
                    None => break,
                    Some(Item::Event(_, event)) => self.pending.events.push(event),
                    Some(Item::Bad { offset, error }) => {
                        tracing::error!(offset, %error, spool = %self.writer.dir().display(), "skipping a damaged line in the spool");
                        self.pending.bad += 1;
                    }
                    Some(Item::Torn { .. } | Item::Gap { .. }) => {}
                }
                self.pending.end = reader.offset();
            }
        }
        Ok(&self.pending.events)
    }

    /// The batch [`Spool::peek`] returned was acknowledged: it leaves the spool. Returns the
    /// damaged lines skipped with it.
    pub fn ack(&mut self) -> Result<u64, SegmentError> {
        let bad = self.pending.bad;
        self.cursor = self.pending.end.max(self.cursor);
        self.pending = Pending::default();
        self.settle()?;
        Ok(bad)
    }

    /// The first `n` events (none of them peeked) leave the spool unsent: the sink took them
    /// by another way (the pump spools a batch in flight, then learns it was acknowledged).
    pub fn skip(&mut self, n: u64) -> Result<(), SegmentError> {
        self.cursor = (self.cursor + n).min(self.writer.next_offset());
        self.forget_read();
        self.settle()
    }

    /// Makes the spool durable now (on shutdown, or on the fsync timer when due).
    pub fn sync(&mut self, only_if_due: bool) -> Result<(), SegmentError> {
        if only_if_due {
            self.writer.sync_if_due()
        } else {
            self.writer.sync()
        }
    }

    /// Saves the cursor and deletes what is acknowledged; a drained spool starts a fresh
    /// segment so its disk space goes at once.
    fn settle(&mut self) -> Result<(), SegmentError> {
        if self.is_empty() {
            self.writer.rotate()?;
            self.forget_read();
        }
        self.save_cursor()?;
        self.writer.remove_before(self.cursor)
    }

    fn forget_read(&mut self) {
        self.reader = None;
        self.pending = Pending::default();
    }

    fn save_cursor(&self) -> Result<(), SegmentError> {
        let dir = self.writer.dir();
        let path = dir.join(CURSOR);
        let temp = dir.join("cursor.tmp");
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            writeln!(file, "{}", self.cursor)?;
            if self.fsync != Fsync::Never {
                file.sync_data()?;
            }
            fs::rename(&temp, &path)
        };
        write().map_err(|source| SegmentError {
            action: "save the cursor in",
            path: path.clone(),
            source,
        })
    }
}

/// The saved cursor, if any; an unreadable one is reported and ignored (everything on disk
/// is resent: at-least-once).
fn read_cursor(dir: &Path) -> Result<Option<u64>, SegmentError> {
    let path: PathBuf = dir.join(CURSOR);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse() {
            Ok(cursor) => Ok(Some(cursor)),
            Err(_) => {
                tracing::warn!(file = %path.display(), "the spool cursor is damaged; resending everything spooled");
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SegmentError {
            action: "read",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
