//! The mismatch corpus: every comparison judged `regression` is captured on disk (the
//! request, the legacy and the candidate answer, the differences) so that `strangler replay`
//! can send it again to a fixed candidate.
//!
//! Layout: JSON lines, one capture a line, in segment files `<route>.<seq>.jsonl` in the
//! folder of `[shadow] corpus`; `seq` grows across routes, so the oldest segment is the one
//! with the smallest number. When the folder would pass `corpus_max`, the oldest segments are
//! deleted (see `writer`); captures lost that way, or never written, are counted per route
//! and reason (`SummaryView::corpus`). Secrets stay out: `authorization`,
//! `proxy-authorization`, `cookie` and the headers a route sets on its copies are stored as
//! `[redacted]`, `set-cookie` keeps cookie names and attributes but not values.
//!
//! What this must never do: hold up the mirror task. A capture is serialized where it is
//! made and handed to the one writer task through a channel bounded by count and by bytes;
//! when it is full, the capture is dropped and counted.

mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use super::lock;
use super::summary::Entry;
use crate::config::GlobalShadowConfig;
use crate::diff::Observed;

/// What stands in for a secret header value.
pub const REDACTED: &str = "[redacted]";
/// Most bytes of one body (request or answer) kept in a capture.
pub const BODY_CAP: usize = 1024 * 1024;
/// Captures waiting for the writer at most.
const QUEUE: usize = 1024;
/// Bytes of captures waiting for the writer at most.
const QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Headers whose values are never written, on requests and answers alike.
const SECRET_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Why the corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The folder or a segment could not be read.
    #[error("cannot read the corpus at {path}: {source}")]
    Read {
        /// The folder or file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A body in a capture is not valid base64.
    #[error("a captured body is not valid base64: {0}")]
    Body(#[from] base64::DecodeError),
}

/// Where the corpus lives and how big it may grow.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusSettings {
    /// The folder holding the segments.
    pub folder: PathBuf,
    /// Most bytes all segments together hold.
    pub max: u64,
    /// A segment is closed once it holds this many bytes.
    pub segment: u64,
}

impl CorpusSettings {
    /// Settings for `folder` capped at `max` bytes, in segments of a sixteenth of the cap
    /// (between 4 KiB and 4 MiB).
    pub fn new(folder: PathBuf, max: u64) -> Self {
        Self {
            folder,
            max,
            segment: (max / 16).clamp(4 * 1024, 4 * 1024 * 1024),
        }
    }

    /// The settings of `[shadow]`, the folder resolved against `base_dir`; `None` when
    /// capturing is off (`corpus_max = 0`).
    pub fn from_config(config: &GlobalShadowConfig, base_dir: &Path) -> Option<Self> {
        let max = config.corpus_max.bytes();
        (max > 0).then(|| Self::new(base_dir.join(&config.corpus), max))
    }
}

// === Mismatch ===

/// One captured mismatch: one line of a segment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Route id.
    pub route: String,
    /// The exchange's correlation id.
    pub correlation: String,
    /// When the comparison finished, RFC 3339.
    pub at: String,
    /// The request as the candidate got it (secrets redacted).
    pub request: CapturedRequest,
    /// The legacy answer, as the client got it.
    pub legacy: CapturedAnswer,
    /// The candidate's answer.
    pub candidate: CapturedAnswer,
    /// The differences kept, with whether each was judged noise.
    pub differences: Vec<CapturedDifference>,
    /// How many differences there were in all.
    pub total_differences: usize,
}

/// A captured request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedRequest {
    /// Method.
    pub method: String,
    /// Path and query, as the client sent them.
    pub path: String,
    /// Headers in order, as `[name, value]`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: CapturedBody,
}

/// A captured answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedAnswer {
    /// Status code.
    pub status: u16,
    /// Headers in order, as `[name, value]`.
    pub headers: Vec<(String, String)>,
    /// The body as received (still content-encoded, if it was).
    pub body: CapturedBody,
}

/// One difference as judged when it was captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedDifference {
    /// Where (`/status`, `/headers/NAME`, `/body/...`).
    pub pointer: String,
    /// The legacy value; absent when legacy had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<serde_json::Value>,
    /// The candidate value; absent when the candidate had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<serde_json::Value>,
    /// Whether the route's baseline (or a rule) explained it at the time.
    pub noise: bool,
}

/// How a body's bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// The bytes are UTF-8 text, written as is.
    Utf8,
    /// Anything else, in standard base64.
    Base64,
}

/// A body, capped at [`BODY_CAP`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedBody {
    /// How `data` holds the bytes.
    pub encoding: BodyEncoding,
    /// The (first) bytes.
    pub data: String,
    /// The whole body's length.
    pub len: usize,
    /// True when only the first [`BODY_CAP`] bytes (or fewer) were kept.
    pub truncated: bool,
}

impl CapturedBody {
    /// Captures `bytes`: as text when it is UTF-8, else as base64; at most [`BODY_CAP`] bytes.
    pub fn capture(bytes: &[u8]) -> Self {
        let truncated = bytes.len() > BODY_CAP;
        let kept = &bytes[..bytes.len().min(BODY_CAP)];
        let text = match std::str::from_utf8(kept) {
            Ok(text) => Some(text),
            // A cut through the last character: keep the text before it.
            Err(e) if truncated && e.error_len().is_none() => {
                std::str::from_utf8(&kept[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        };
        let (encoding, data) = match text {
            Some(text) => (BodyEncoding::Utf8, text.to_owned()),
            None => (BodyEncoding::Base64, BASE64.encode(kept)),
        };
        Self {
            encoding,
            data,
            len: bytes.len(),
            truncated,
        }
    }

    /// The kept bytes.
    pub fn bytes(&self) -> Result<Bytes, CorpusError> {
        Ok(match self.encoding {
            BodyEncoding::Utf8 => Bytes::from(self.data.clone().into_bytes()),
            BodyEncoding::Base64 => Bytes::from(BASE64.decode(&self.data)?),
        })
    }
}

impl CapturedAnswer {
    fn capture(answer: &Observed, secret: &[String]) -> Self {
        Self {
            status: answer.status,
            headers: redact(&answer.headers, secret),
            body: CapturedBody::capture(&answer.body),
        }
    }

    /// The answer as `diff` sees one (headers that no longer parse are left out).
    pub fn observed(&self) -> Result<Observed, CorpusError> {
        Ok(Observed {
            status: self.status,
            headers: header_map(&self.headers, |_| true),
            body: self.body.bytes()?,
        })
    }
}

/// Everything a capture is made from, borrowed from the mirror task.
#[derive(Debug)]
pub struct Exchange<'a> {
    /// Route id.
    pub route: &'a str,
    /// Correlation id.
    pub correlation: &'a str,
    /// When the comparison finished.
    pub at: &'a str,
    /// Request method.
    pub method: &'a Method,
    /// Request path and query, as the client sent them.
    pub path: &'a str,
    /// The headers of the copy the candidate got.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a [u8],
    /// The legacy answer.
    pub legacy: &'a Observed,
    /// The candidate's answer.
    pub candidate: &'a Observed,
    /// The differences kept.
    pub differences: &'a [Entry],
    /// All differences, kept or not.
    pub total_differences: usize,
    /// More headers whose values are secret (the route's `shadow.set_headers`).
    pub secret_headers: &'a [String],
}

impl Mismatch {
    /// Captures an exchange, redacting secrets and capping bodies.
    pub fn new(exchange: &Exchange<'_>) -> Self {
        let secret = exchange.secret_headers;
        Self {
            route: exchange.route.to_owned(),
            correlation: exchange.correlation.to_owned(),
            at: exchange.at.to_owned(),
            request: CapturedRequest {
                method: exchange.method.to_string(),
                path: exchange.path.to_owned(),
                headers: redact(exchange.headers, secret),
                body: CapturedBody::capture(exchange.body),
            },
            legacy: CapturedAnswer::capture(exchange.legacy, secret),
            candidate: CapturedAnswer::capture(exchange.candidate, secret),
            differences: exchange
                .differences
                .iter()
                .map(|d| CapturedDifference {
                    pointer: d.pointer.clone(),
                    legacy: d.legacy.clone(),
                    candidate: d.candidate.clone(),
                    noise: d.noise,
                })
                .collect(),
            total_differences: exchange.total_differences,
        }
    }

    /// The request headers to send again: redacted ones are left out, not sent as
    /// `[redacted]`.
    pub fn replay_headers(&self) -> HeaderMap {
        header_map(&self.request.headers, |value| value != REDACTED)
    }
}

/// The headers as `[name, value]` pairs with secret values replaced.
fn redact(headers: &HeaderMap, secret: &[String]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let text = String::from_utf8_lossy(value.as_bytes());
            let value = if SECRET_HEADERS.contains(&name)
                || secret.iter().any(|s| s.eq_ignore_ascii_case(name))
            {
                REDACTED.to_owned()
            } else if name == "set-cookie" {
                redact_set_cookie(&text)
            } else {
                text.into_owned()
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// `sid=abc; Path=/` → `sid=[redacted]; Path=/`: the cookie's name and attributes stay (that
/// is what `diff` compares), its value goes.
fn redact_set_cookie(text: &str) -> String {
    let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
    let name = pair.split_once('=').map_or(pair, |(name, _)| name).trim();
    if attributes.is_empty() {
        format!("{name}={REDACTED}")
    } else {
        format!("{name}={REDACTED};{attributes}")
    }
}

fn header_map(pairs: &[(String, String)], keep: impl Fn(&str) -> bool) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if !keep(value) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

// === Corpus ===

/// Captures of one route: written, and lost by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CorpusCounts {
    /// Captures written to disk.
    pub captured: u64,
    /// Captures lost, by reason: `queue_full` (the writer was behind), `too_large`,
    /// `write_failed` (disk error), `rotated_out` (deleted to stay under `corpus_max`).
    pub dropped: BTreeMap<String, u64>,
}

/// Counts per route, shared by the senders and the writer.
#[derive(Debug, Default)]
struct Tally(Mutex<BTreeMap<String, CorpusCounts>>);

impl Tally {
    fn captured(&self, route: &str) {
        lock(&self.0).entry(route.to_owned()).or_default().captured += 1;
    }

    fn dropped(&self, route: &str, reason: &str, n: u64) {
        let mut all = lock(&self.0);
        let counts = all.entry(route.to_owned()).or_default();
        *counts.dropped.entry(reason.to_owned()).or_default() += n;
    }
}

/// One serialized capture on its way to the writer, holding its share of the byte budget.
#[derive(Debug)]
struct Line {
    route: String,
    text: String,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

/// The sending side of the corpus: cheap to offer to, never waits.
#[derive(Debug)]
pub struct Corpus {
    lines: mpsc::Sender<Line>,
    budget: Arc<Semaphore>,
    tally: Arc<Tally>,
}

impl Corpus {
    /// Starts the writer on `tasks`; it runs until every `Corpus` handle is dropped, then
    /// writes what is queued and ends.
    pub fn start(settings: CorpusSettings, tasks: &TaskTracker) -> Self {
        let (lines, queue) = mpsc::channel(QUEUE);
        let tally = Arc::new(Tally::default());
        tasks.spawn(writer::Writer::new(settings, tally.clone()).run(queue));
        Self {
            lines,
            budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
            tally,
        }
    }

    /// Hands a capture to the writer, or counts it as dropped when the writer is behind.
    pub fn offer(&self, mismatch: &Mismatch) {
        let route = mismatch.route.as_str();
        let Ok(text) = serde_json::to_string(mismatch) else {
            return self.tally.dropped(route, "encode_failed", 1);
        };
        let Some(budget) = u32::try_from(text.len())
            .ok()
            .and_then(|n| self.budget.clone().try_acquire_many_owned(n).ok())
        else {
            return self.tally.dropped(route, "queue_full", 1);
        };
        let line = Line {
            route: route.to_owned(),
            text,
            _budget: budget,
        };
        if self.lines.try_send(line).is_err() {
            self.tally.dropped(route, "queue_full", 1);
        }
    }

    /// What became of `route`'s captures so far.
    pub fn counts(&self, route: &str) -> CorpusCounts {
        lock(&self.tally.0).get(route).cloned().unwrap_or_default()
    }
}

// === Reading ===

/// A route's captures as read back, oldest first.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The captures.
    pub mismatches: Vec<Mismatch>,
    /// Lines that could not be read (cut by a crash, or not captures).
    pub unreadable: usize,
}

/// Reads every capture of `route` in `folder`, oldest first.
pub fn read_route(folder: &Path, route: &str) -> Result<Loaded, CorpusError> {
    let error = |path: &Path| {
        let path = path.display().to_string();
        move |source| CorpusError::Read { path, source }
    };
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(error(folder))? {
        let entry = entry.map_err(error(folder))?;
        let name = entry.file_name();
        if let Some((owner, seq)) = name.to_str().and_then(writer::parse_name) {
            if owner == route {
                segments.push((seq, entry.path()));
            }
        }
    }
    segments.sort();
    let mut loaded = Loaded::default();
    for (_, path) in segments {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // Rotated away meanwhile by a running proxy.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(error(&path)(e)),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Mismatch>(line) {
                Ok(mismatch) => loaded.mismatches.push(mismatch),
                Err(_) => loaded.unreadable += 1,
            }
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests;
