//! Reading a segment folder in offset order, while a writer may be appending to it.
//!
//! The reader stops before a line without its newline: the writer may still be writing it.
//! Once a newer segment exists, such a line can never be completed (a crash tore it) and is
//! skipped as [`Item::Torn`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{SegmentError, list, segment_name};
use crate::events::Event;

/// One line read.
#[derive(Debug)]
pub enum Item {
    /// An event and its offset.
    Event(u64, Event),
    /// A complete line at this offset that is not an event.
    Bad {
        /// Its offset.
        offset: u64,
        /// Why it does not parse.
        error: String,
    },
    /// A torn last line of the segment starting at `segment` (skipped; it has no offset).
    Torn {
        /// First offset of the segment it ended.
        segment: u64,
    },
    /// Lines from `from` to `to` were deleted (retention, a full spool) before they were read.
    Gap {
        /// First missing offset.
        from: u64,
        /// First offset after the gap.
        to: u64,
    },
}

/// Reads a segment folder from an offset on.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    /// The segment being read: its first offset and file.
    current: Option<(u64, BufReader<File>)>,
    /// Offset of the next line.
    offset: u64,
    buf: Vec<u8>,
}

impl Reader {
    /// A reader whose first line is the one at `offset` (or the oldest line still on disk, if
    /// `offset` was deleted: the first item is then a [`Item::Gap`]).
    pub fn at_offset(dir: &Path, offset: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            current: None,
            offset,
            buf: Vec::new(),
        }
    }

    /// A reader starting at the first segment written to at or after `time`: every line
    /// before it was written, so is dated, before `time`. Lines of that segment dated earlier
    /// are the caller's to skip.
    pub fn at_time(dir: &Path, time: SystemTime) -> Result<Self, SegmentError> {
        let segments = list(dir)?;
        let mut start = segments.last().map_or(0, |(first, _)| *first);
        for (first, path) in &segments {
            match std::fs::metadata(path).and_then(|m| m.modified()) {
                Ok(modified) if modified < time => {}
                _ => {
                    start = *first;
                    break;
                }
            }
        }
        Ok(Self::at_offset(dir, start))
    }

    /// The offset of the next line to be read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next line, or `None` when everything complete has been read (call again later to
    /// follow a writer).
    pub fn next_item(&mut self) -> Result<Option<Item>, SegmentError> {
        if self.current.is_none() {
            if let Some(gap) = self.open_current()? {
                return Ok(Some(gap));
            }
        }
        let Some((first, file)) = self.current.as_mut() else {
            return Ok(None);
        };
        let first = *first;
        let path = self.dir.join(segment_name(first));
        self.buf.clear();
        let n = read_line(file, &mut self.buf).map_err(SegmentError::new("read", &path))?;
        if n > 0 && self.buf.last() == Some(&b'\n') {
            let offset = self.offset;
            self.offset += 1;
            let line = &self.buf[..n - 1];
            return Ok(Some(match serde_json::from_slice::<Event>(line) {
                Ok(event) => Item::Event(offset, event),
                Err(e) => Item::Bad {
                    offset,
                    error: e.to_string(),
                },
            }));
        }
        // End of this segment for now: a partial line is left for the writer to finish.
        if n > 0 {
            let back = i64::try_from(n).unwrap_or(i64::MAX);
            file.seek(SeekFrom::Current(-back))
                .map_err(SegmentError::new("read", &path))?;
        }
        let next = self.dir.join(segment_name(self.offset));
        if self.offset == first || !next.exists() {
            return Ok(None);
        }
        self.current = None;
        if n > 0 {
            return Ok(Some(Item::Torn { segment: first }));
        }
        self.next_item()
    }

    /// Opens the segment holding `self.offset` and skips to it; reports a gap when that
    /// offset is gone.
    fn open_current(&mut self) -> Result<Option<Item>, SegmentError> {
        let segments = list(&self.dir)?;
        let Some(index) = segments
            .iter()
            .rposition(|(first, _)| *first <= self.offset)
            .or_else(|| (!segments.is_empty()).then_some(0))
        else {
            return Ok(None);
        };
        let (first, path) = &segments[index];
        let file = File::open(path).map_err(SegmentError::new("read", path))?;
        let mut file = BufReader::new(file);
        if *first > self.offset {
            let gap = Item::Gap {
                from: self.offset,
                to: *first,
            };
            self.offset = *first;
            self.current = Some((*first, file));
            return Ok(Some(gap));
        }
        let mut line = 0;
        while first + line < self.offset {
            self.buf.clear();
            let n = read_line(&mut file, &mut self.buf).map_err(SegmentError::new("read", path))?;
            if n == 0 || self.buf.last() != Some(&b'\n') {
                // The offset is past what this segment holds (yet): wait at its end.
                if n > 0 {
                    let back = i64::try_from(n).unwrap_or(i64::MAX);
                    file.seek(SeekFrom::Current(-back))
                        .map_err(SegmentError::new("read", path))?;
                }
                self.offset = first + line;
                break;
            }
            line += 1;
        }
        self.current = Some((*first, file));
        Ok(None)
    }
}

/// Reads up to and including the next newline (`read_until` retries interrupted reads).
fn read_line(file: &mut BufReader<File>, buf: &mut Vec<u8>) -> io::Result<usize> {
    file.read_until(b'\n', buf)
}
