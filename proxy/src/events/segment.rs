//! Segmented JSON-lines files: the format of the embedded event log and of the spool.
//!
//! A folder holds segment files named after the offset of their first line
//! (`00000000000000004096.jsonl`); one [`Event`] per line; an event's offset is its line number
//! counted across segments, so segments are contiguous and a reader moves from one to the next
//! by name alone. Only the newest segment is written; it is closed (rotated) once it holds
//! `segment_size` bytes. Whole segments are deleted by retention (the log) or once acknowledged
//! (the spool), never a part of one.
//!
//! Why JSON lines: a person can read and `grep` them, a crash can only tear the last line, and
//! readers need no index. A torn last line (a crash mid-write) is cut off when a writer opens
//! the folder and skipped (and reported) by readers; a complete line that does not parse is
//! reported with its offset and counts as a line.
//!
//! Never: rewrite a line already written, or let a failed write leave half a line behind
//! (the file is cut back to its last complete line).

mod reader;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use reader::{Item, Reader};

use super::Event;
use crate::config::Fsync;

/// A segment file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct SegmentError {
    /// What was being done, e.g. "append to".
    pub action: &'static str,
    /// The file or folder.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

impl SegmentError {
    fn new(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self {
            action,
            path,
            source,
        }
    }
}

/// How a [`Writer`] sizes and syncs its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A segment is closed once it holds this many bytes.
    pub segment_size: u64,
    /// When data reaches the disk.
    pub fsync: Fsync,
    /// With [`Fsync::Interval`], how often.
    pub fsync_interval: Duration,
}

/// The file name of the segment whose first line has `offset`.
pub fn segment_name(offset: u64) -> String {
    format!("{offset:020}.jsonl")
}

/// The first offset a segment file name stands for.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".jsonl")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments of `dir` by first offset, oldest first; a missing folder has none.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SegmentError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SegmentError::new("list", dir)(e)),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(SegmentError::new("list", dir))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_name) {
            segments.push((first, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(first, _)| *first);
    Ok(segments)
}

/// The offset the next line written to `dir` will get (its number of lines so far, counted
/// from the first segment's name). Complete lines only.
pub fn end_offset(dir: &Path) -> Result<u64, SegmentError> {
    let Some((first, path)) = list(dir)?.pop() else {
        return Ok(0);
    };
    let scan = scan(&path)?;
    Ok(first + scan.lines)
}

/// What a segment file holds.
struct Scan {
    /// Complete lines.
    lines: u64,
    /// Bytes up to the end of the last complete line.
    complete: u64,
    /// Bytes of the file.
    total: u64,
}

fn scan(path: &Path) -> Result<Scan, SegmentError> {
    let mut file = File::open(path).map_err(SegmentError::new("read", path))?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut lines, mut complete, mut total) = (0u64, 0u64, 0u64);
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SegmentError::new("read", path)(e)),
        };
        for (i, byte) in buf[..n].iter().enumerate() {
            if *byte == b'\n' {
                lines += 1;
                complete = total + i as u64 + 1;
            }
        }
        total += n as u64;
    }
    Ok(Scan {
        lines,
        complete,
        total,
    })
}

/// About what an event's line holds besides `data` (ids, time, type, source, field names).
const ENVELOPE_BYTES: usize = 384;

/// Serializes `event` as one line, newline included.
pub fn to_line(event: &Event) -> Vec<u8> {
    let mut line = Vec::new();
    push_line(&mut line, event);
    line
}

/// Appends `event`'s line, newline included, to `buf`.
fn push_line(buf: &mut Vec<u8>, event: &Event) {
    // Room for the envelope up front: growing from serde_json's 128 bytes copied the line
    // three times. An `Event` holds only strings and JSON text: serializing it cannot fail,
    // and JSON escapes every newline inside strings.
    buf.reserve(event.data.json().len() + ENVELOPE_BYTES);
    let start = buf.len();
    if serde_json::to_writer(&mut *buf, event).is_err() {
        buf.truncate(start);
        buf.extend_from_slice(b"{}");
    }
    buf.push(b'\n');
}

/// The write buffer kept between batches is let go of past this size (a burst of large
/// events should not pin its memory).
const KEPT_BUFFER: usize = 1 << 20;

/// Appends to a segment folder; the one writer of that folder.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    options: Options,
    /// Every segment: first offset → bytes. The last one is the one written to.
    segments: BTreeMap<u64, u64>,
    /// The newest segment, open for appending (opened on first write).
    active: Option<File>,
    /// Offset of the next line.
    next: u64,
    /// Written since the last fsync.
    dirty: bool,
    last_sync: Instant,
    /// The lines of the batch being written and where each ends, reused from batch to batch.
    scratch: (Vec<u8>, Vec<usize>),
}

impl Writer {
    /// Opens (creating) `dir`. A torn last line is cut off and reported. An empty folder
    /// starts at offset `start`.
    pub fn open(dir: &Path, options: Options, start: u64) -> Result<Self, SegmentError> {
        fs::create_dir_all(dir).map_err(SegmentError::new("create", dir))?;
        let listed = list(dir)?;
        let mut segments = BTreeMap::new();
        let mut next = start;
        if let Some((last_first, last_path)) = listed.last() {
            for (first, path) in &listed {
                let bytes = fs::metadata(path)
                    .map_err(SegmentError::new("read", path))?
                    .len();
                segments.insert(*first, bytes);
            }
            let scan = scan(last_path)?;
            if scan.complete < scan.total {
                tracing::warn!(
                    file = %last_path.display(),
                    bytes = scan.total - scan.complete,
                    "cutting off a torn last line (the previous run stopped mid-write)"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(last_path)
                    .map_err(SegmentError::new("repair", last_path))?;
                file.set_len(scan.complete)
                    .map_err(SegmentError::new("repair", last_path))?;
                segments.insert(*last_first, scan.complete);
            }
            next = last_first + scan.lines;
        }
        Ok(Self {
            dir: dir.to_owned(),
            options,
            segments,
            active: None,
            next,
            dirty: false,
            last_sync: Instant::now(),
            scratch: (Vec::new(), Vec::new()),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Offset of the next line written.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Offset of the oldest line still on disk (the next offset when there is none).
    pub fn first_offset(&self) -> u64 {
        self.segments
            .first_key_value()
            .map_or(self.next, |(first, _)| *first)
    }

    /// Bytes of all segments.
    pub fn bytes(&self) -> u64 {
        self.segments.values().sum()
    }

    /// Segments as (first offset, end offset, bytes), oldest first.
    pub fn segments(&self) -> Vec<(u64, u64, u64)> {
        let firsts: Vec<u64> = self.segments.keys().copied().collect();
        self.segments
            .iter()
            .enumerate()
            .map(|(i, (first, bytes))| {
                let end = firsts.get(i + 1).copied().unwrap_or(self.next);
                (*first, end, *bytes)
            })
            .collect()
    }

    /// Appends serialized lines (each ending in `\n`), rotating by size, then syncs as the
    /// fsync policy says. On error nothing of the failing write stays on disk.
    pub fn append_lines(&mut self, lines: &[Vec<u8>]) -> Result<(), SegmentError> {
        self.write_batch(|buf, ends| {
            for line in lines {
                buf.extend_from_slice(line);
                ends.push(buf.len());
            }
        })?;
        self.sync_if_policy_says()
    }

    /// Appends events, then syncs as the fsync policy says.
    pub fn append(&mut self, events: &[Event]) -> Result<(), SegmentError> {
        self.write_events(events)?;
        self.sync_if_policy_says()
    }

    /// Appends events, rotating by size, without syncing (see [`Writer::sync_due`]). On
    /// error nothing of the failing write stays on disk.
    pub fn write_events(&mut self, events: &[Event]) -> Result<(), SegmentError> {
        self.write_batch(|buf, ends| {
            for event in events {
                push_line(buf, event);
                ends.push(buf.len());
            }
        })
    }

    /// Lets `fill` put a batch's lines into one buffer (with where each ends), kept between
    /// batches, and writes them at once: one write per segment they fall into.
    fn write_batch(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>, &mut Vec<usize>),
    ) -> Result<(), SegmentError> {
        let (mut buf, mut ends) = std::mem::take(&mut self.scratch);
        buf.clear();
        ends.clear();
        fill(&mut buf, &mut ends);
        let written = self.write_rotating(&buf, &ends);
        if buf.capacity() <= KEPT_BUFFER {
            self.scratch = (buf, ends);
        }
        written
    }

    /// Writes the lines of `buf` that end at `ends`, starting a new segment before a line
    /// that would take the current one past `segment_size`.
    fn write_rotating(&mut self, buf: &[u8], ends: &[usize]) -> Result<(), SegmentError> {
        let (mut from, mut start, mut count) = (0, 0, 0u64);
        for &end in ends {
            let pending = self.active_bytes() + (start - from) as u64;
            if pending > 0 && pending + (end - start) as u64 > self.options.segment_size {
                self.write(&buf[from..start], count)?;
                (from, count) = (start, 0);
                self.rotate()?;
            }
            count += 1;
            start = end;
        }
        self.write(&buf[from..], count)
    }

    /// Whether the fsync policy wants what was written synced now: after every write with
    /// `always`, once the interval has passed with `interval`, never with `never`.
    pub fn sync_due(&self) -> bool {
        match self.options.fsync {
            Fsync::Always => true,
            Fsync::Interval => self.last_sync.elapsed() >= self.options.fsync_interval,
            Fsync::Never => false,
        }
    }

    fn sync_if_policy_says(&mut self) -> Result<(), SegmentError> {
        if self.sync_due() { self.sync() } else { Ok(()) }
    }

    fn active_bytes(&self) -> u64 {
        self.segments
            .get(&self.active_first())
            .copied()
            .unwrap_or(0)
    }

    /// First offset of the segment being written (a new one when there is none).
    fn active_first(&self) -> u64 {
        self.segments
            .last_key_value()
            .map_or(self.next, |(first, _)| *first)
    }

    fn write(&mut self, buf: &[u8], count: u64) -> Result<(), SegmentError> {
        if buf.is_empty() {
            return Ok(());
        }
        let first = self.active_first();
        // Named only to open the file or to report an error: not built on every write.
        let path = || self.dir.join(segment_name(first));
        let before = self.active_bytes();
        if self.active.is_none() {
            let path = path();
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(SegmentError::new("open", &path))?;
            self.active = Some(file);
            self.segments.entry(first).or_insert(0);
        }
        let Some(file) = self.active.as_mut() else {
            return Ok(());
        };
        if let Err(e) = file.write_all(buf) {
            // Cut back to the last complete line so the next write does not glue onto it.
            if file.set_len(before).is_err() {
                self.active = None;
            }
            return Err(SegmentError::new("append to", &path())(e));
        }
        self.segments.insert(first, before + buf.len() as u64);
        self.next += count;
        self.dirty = true;
        Ok(())
    }

    /// Closes the segment being written; the next line starts a new one.
    pub fn rotate(&mut self) -> Result<(), SegmentError> {
        if self.active_bytes() == 0 {
            return Ok(());
        }
        if self.options.fsync != Fsync::Never {
            self.sync()?;
        }
        self.active = None;
        self.segments.insert(self.next, 0);
        Ok(())
    }

    /// Makes what was written durable, if anything was.
    pub fn sync(&mut self) -> Result<(), SegmentError> {
        if self.dirty {
            if let Some(file) = &self.active {
                let path = self.dir.join(segment_name(self.active_first()));
                file.sync_data().map_err(SegmentError::new("sync", &path))?;
            }
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs when the interval policy is due (called on the publisher's timer).
    pub fn sync_if_due(&mut self) -> Result<(), SegmentError> {
        if self.options.fsync == Fsync::Interval {
            self.sync_if_policy_says()?;
        }
        Ok(())
    }

    /// Deletes the oldest segment (closing it first when it is the one being written) and
    /// returns its (first, end) offsets; `None` when there is nothing to delete.
    pub fn remove_oldest(&mut self) -> Result<Option<(u64, u64)>, SegmentError> {
        let Some((first, end, bytes)) = self.segments().first().copied() else {
            return Ok(None);
        };
        if bytes == 0 {
            return Ok(None);
        }
        if self.segments.len() == 1 {
            self.rotate()?;
        }
        self.remove(first)?;
        Ok(Some((first, end)))
    }

    /// Deletes every closed segment whose lines all lie before `offset`.
    pub fn remove_before(&mut self, offset: u64) -> Result<(), SegmentError> {
        for (first, end, _) in self.segments() {
            if end > offset || first == self.active_first() {
                break;
            }
            self.remove(first)?;
        }
        Ok(())
    }

    /// Deletes closed segments last written before `max_age` ago, then the oldest closed
    /// ones while all together hold more than `max_bytes`. Returns how many lines went.
    pub fn retain(&mut self, max_age: Duration, max_bytes: u64) -> Result<u64, SegmentError> {
        let cutoff = SystemTime::now().checked_sub(max_age);
        let mut removed = 0;
        for (first, end, _) in self.segments() {
            if first == self.active_first() {
                break;
            }
            let path = self.dir.join(segment_name(first));
            let modified = fs::metadata(&path).and_then(|m| m.modified()).ok();
            let old = matches!((modified, cutoff), (Some(m), Some(c)) if m < c);
            if !old && self.bytes() <= max_bytes {
                break;
            }
            self.remove(first)?;
            removed += end - first;
        }
        Ok(removed)
    }

    fn remove(&mut self, first: u64) -> Result<(), SegmentError> {
        let path = self.dir.join(segment_name(first));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(SegmentError::new("delete", &path)(e)),
        }
        self.segments.remove(&first);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
