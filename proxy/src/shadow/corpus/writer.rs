//! The one task that writes the corpus: appends lines to per-route segments and deletes the
//! oldest segments to stay under the cap.
//!
//! It trusts nothing it did not write itself: at start it lists the folder (earlier runs'
//! segments count against the cap and go first), and a segment's captures are counted when it
//! is deleted (from memory for this run's, by counting its lines for older ones). A failing
//! disk costs captures (counted as `write_failed`), never the writer: it tries again with
//! the next capture.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{CorpusSettings, Line, Tally};

/// `products.00000012.jsonl` → (`products`, 12).
pub(super) fn parse_name(name: &str) -> Option<(&str, u64)> {
    let stem = name.strip_suffix(".jsonl")?;
    let (route, seq) = stem.rsplit_once('.')?;
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if route.is_empty() || !route.chars().all(valid) || seq.is_empty() {
        return None;
    }
    Some((route, seq.parse().ok()?))
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    route: String,
    path: PathBuf,
    bytes: u64,
    /// Captures in it, when this run wrote all of them; `None` for an earlier run's.
    lines: Option<u64>,
}

/// The writer's state.
#[derive(Debug)]
pub(super) struct Writer {
    settings: CorpusSettings,
    tally: Arc<Tally>,
    /// Every segment on disk by sequence number: the first is the oldest.
    segments: BTreeMap<u64, Segment>,
    /// Each route's segment being appended to: its number and open file.
    open: HashMap<String, (u64, File)>,
    /// Bytes of all segments.
    total: u64,
    next_seq: u64,
    /// The folder has been created and listed.
    ready: bool,
}

impl Writer {
    pub(super) fn new(settings: CorpusSettings, tally: Arc<Tally>) -> Self {
        Self {
            settings,
            tally,
            segments: BTreeMap::new(),
            open: HashMap::new(),
            total: 0,
            next_seq: 1,
            ready: false,
        }
    }

    /// Writes lines until every sender is gone.
    pub(super) async fn run(mut self, mut queue: mpsc::Receiver<Line>) {
        while let Some(line) = queue.recv().await {
            self.write(&line.route, &line.text).await;
        }
        for (_, (_, mut file)) in self.open.drain() {
            if let Err(e) = file.flush().await {
                tracing::warn!(error = %e, "cannot flush a corpus segment");
            }
        }
    }

    async fn write(&mut self, route: &str, text: &str) {
        let len = text.len() as u64 + 1;
        if len > self.settings.max {
            return self.tally.dropped(route, "too_large", 1);
        }
        if let Err(e) = self.append(route, text, len).await {
            tracing::warn!(folder = %self.settings.folder.display(), error = %e, "cannot write the shadow corpus");
            // Start afresh (a new segment, the folder listed again) with the next capture.
            self.open.remove(route);
            self.ready = false;
            self.tally.dropped(route, "write_failed", 1);
        }
    }

    async fn append(&mut self, route: &str, text: &str, len: u64) -> std::io::Result<()> {
        if !self.ready {
            self.list().await?;
        }
        let segment_full = self
            .open
            .get(route)
            .and_then(|(seq, _)| self.segments.get(seq))
            .is_some_and(|s| s.bytes > 0 && s.bytes + len > self.settings.segment);
        if segment_full {
            self.open.remove(route);
        }
        while self.total + len > self.settings.max {
            if !self.delete_oldest().await {
                break;
            }
        }
        if !self.open.contains_key(route) {
            let seq = self.next_seq;
            self.next_seq += 1;
            let path = self.settings.folder.join(format!("{route}.{seq:08}.jsonl"));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await?;
            self.segments.insert(
                seq,
                Segment {
                    route: route.to_owned(),
                    path,
                    bytes: 0,
                    lines: Some(0),
                },
            );
            self.open.insert(route.to_owned(), (seq, file));
        }
        let Some((seq, file)) = self.open.get_mut(route) else {
            return Ok(());
        };
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        file.write_all(&bytes).await?;
        file.flush().await?;
        if let Some(segment) = self.segments.get_mut(seq) {
            segment.bytes += len;
            segment.lines = segment.lines.map(|n| n + 1);
        }
        self.total += len;
        self.tally.captured(route);
        Ok(())
    }

    /// Creates the folder and takes stock of the segments already in it.
    async fn list(&mut self) -> std::io::Result<()> {
        fs::create_dir_all(&self.settings.folder).await?;
        let mut entries = fs::read_dir(&self.settings.folder).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            let Some((route, seq)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            if self.segments.contains_key(&seq) {
                continue;
            }
            let bytes = entry.metadata().await?.len();
            self.total += bytes;
            self.next_seq = self.next_seq.max(seq + 1);
            self.segments.insert(
                seq,
                Segment {
                    route: route.to_owned(),
                    path: entry.path(),
                    bytes,
                    lines: None,
                },
            );
        }
        self.ready = true;
        Ok(())
    }

    /// Deletes the oldest segment, counting its captures as dropped; false when none is left.
    async fn delete_oldest(&mut self) -> bool {
        let Some((seq, segment)) = self.segments.pop_first() else {
            return false;
        };
        if self
            .open
            .get(&segment.route)
            .is_some_and(|(s, _)| *s == seq)
        {
            self.open.remove(&segment.route);
        }
        let lines = match segment.lines {
            Some(n) => n,
            None => count_lines(&segment.path).await,
        };
        match fs::remove_file(&segment.path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %segment.path.display(), error = %e, "cannot delete a corpus segment");
            }
        }
        self.total = self.total.saturating_sub(segment.bytes);
        if lines > 0 {
            self.tally.dropped(&segment.route, "rotated_out", lines);
        }
        true
    }
}

/// Newlines in a file (0 when it cannot be read).
async fn count_lines(path: &std::path::Path) -> u64 {
    let Ok(mut file) = File::open(path).await else {
        return 0;
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut lines = 0;
    while let Ok(n) = file.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        lines += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    lines
}
