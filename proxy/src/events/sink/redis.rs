//! The Redis Streams sink: one stream key per event type, `<key_prefix>:<type>`.
//!
//! Why per type and not one key: consumers subscribe by type (`XREADGROUP … STREAMS
//! strangler:shop.order.placed`), and a service that wants orders should not read and skip
//! every exchange the proxy sees. The route stays in the event's `subject`. Each entry holds
//! two fields, `id` (the event id) and `event` (the JSON structured event); keys are trimmed
//! with `MAXLEN ~ <maxlen>`.
//!
//! An event counts as published only when its `XADD` replied. Redis has no duplicate window:
//! a batch retried after a lost reply is stored again, under the same event `id`, so
//! consumers drop an id they have already handled (at-least-once, like every bus here).
//! The connection is a [`ConnectionManager`], which reconnects after an outage; every call is
//! bounded by [`TIMEOUT`].

mod subscribe;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RetryMethod};

pub use subscribe::Ack;

use super::{ReadFrom, SinkError};
use crate::config::BusConfig;
use crate::events::Event;

/// How long any broker round trip may take before the broker counts as unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The entry field holding the event id.
const ID_FIELD: &str = "id";
/// The entry field holding the JSON structured event.
const EVENT_FIELD: &str = "event";

/// One stream entry as XRANGE returns it: its entry id and its fields.
type Entry = (String, HashMap<String, String>);

/// Publishes events to Redis streams and reads them back.
#[derive(Clone)]
pub struct RedisSink {
    /// A multiplexed connection that reconnects by itself.
    conn: ConnectionManager,
    /// Stream keys are `<key_prefix>:<type>` (`[bus] key_prefix`).
    key_prefix: String,
    /// Approximate length each stream key is trimmed to (`[bus] maxlen`; 0: no trimming).
    maxlen: u64,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("key_prefix", &self.key_prefix)
            .field("maxlen", &self.maxlen)
            .finish_non_exhaustive()
    }
}

impl RedisSink {
    /// Connects and checks the server with `PING`. An unreachable server fails fast with
    /// [`SinkError::Unavailable`]; a malformed URL is [`SinkError::Rejected`].
    pub async fn connect(settings: &BusConfig) -> Result<Self, SinkError> {
        let conn = connection(settings, TIMEOUT).await?;
        let sink = Self {
            conn,
            key_prefix: settings.key_prefix.clone(),
            maxlen: settings.maxlen,
        };
        let mut conn = sink.conn.clone();
        bounded(redis::cmd("PING").query_async::<String>(&mut conn)).await?;
        Ok(sink)
    }

    /// Appends each event with `XADD <key_prefix>:<type> MAXLEN ~ <maxlen> * id <id> event
    /// <json>`, pipelined in one round trip. `Ok` only when every XADD replied; a broker that
    /// is gone or slow gives [`SinkError::Unavailable`] within [`TIMEOUT`], and the caller
    /// retries the batch (entries that did land are stored again, same ids).
    pub async fn publish(&self, batch: &[Event]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in batch {
            let json = serde_json::to_string(event).map_err(|e| {
                SinkError::Rejected(format!("event {} cannot be serialized: {e}", event.id))
            })?;
            let xadd = pipe.cmd("XADD").arg(self.key(&event.kind));
            if self.maxlen > 0 {
                xadd.arg("MAXLEN").arg("~").arg(self.maxlen);
            }
            xadd.arg("*")
                .arg(ID_FIELD)
                .arg(&event.id)
                .arg(EVENT_FIELD)
                .arg(json);
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> = bounded(pipe.query_async(&mut conn)).await?;
        if ids.len() == batch.len() {
            Ok(())
        } else {
            Err(SinkError::Unavailable(format!(
                "redis: {} of {} XADD replies",
                ids.len(),
                batch.len()
            )))
        }
    }

    /// Reads up to `limit` stored events across every `<key_prefix>:*` stream, merged by
    /// entry id (the time Redis stored them), for `events tail` and `replay`.
    /// [`ReadFrom::Offset`] counts events to skip in that merged order.
    pub async fn read(&self, from: ReadFrom, limit: usize) -> Result<Vec<Event>, SinkError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = self.stream_keys().await?;
        let mut conn = self.conn.clone();
        let mut entries: Vec<(EntryId, Event)> = Vec::new();
        for key in &keys {
            let (command, start, end, count) = match from {
                ReadFrom::Start => ("XRANGE", "-".to_owned(), "+", limit),
                ReadFrom::Time(at) => {
                    let ms = at
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis();
                    ("XRANGE", format!("{ms}-0"), "+", limit)
                }
                ReadFrom::Offset(skip) => (
                    "XRANGE",
                    "-".to_owned(),
                    "+",
                    limit.saturating_add(usize::try_from(skip).unwrap_or(usize::MAX)),
                ),
                ReadFrom::Tail(n) => ("XREVRANGE", "+".to_owned(), "-", n.min(limit)),
            };
            let found: Vec<Entry> = bounded(
                redis::cmd(command)
                    .arg(key)
                    .arg(start)
                    .arg(end)
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut conn),
            )
            .await?;
            entries.extend(
                found
                    .into_iter()
                    .filter_map(|entry| parse_entry(key, entry)),
            );
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let events = entries.into_iter().map(|(_, event)| event);
        Ok(match from {
            ReadFrom::Tail(n) => {
                let all: Vec<Event> = events.collect();
                let keep = n.min(limit);
                all[all.len().saturating_sub(keep)..].to_vec()
            }
            ReadFrom::Offset(skip) => events
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(limit)
                .collect(),
            ReadFrom::Start | ReadFrom::Time(_) => events.take(limit).collect(),
        })
    }

    /// The stream key of an event type.
    fn key(&self, kind: &str) -> String {
        format!("{}:{kind}", self.key_prefix)
    }

    /// Every stream key under the prefix, found with `SCAN … TYPE stream`.
    async fn stream_keys(&self) -> Result<Vec<String>, SinkError> {
        let pattern = format!("{}:*", glob_escape(&self.key_prefix));
        let mut conn = self.conn.clone();
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, found): (u64, Vec<String>) = bounded(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1_000)
                    .arg("TYPE")
                    .arg("stream")
                    .query_async(&mut conn),
            )
            .await?;
            keys.extend(found);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// Where an entry sits in the merged order: Redis's `<ms>-<seq>`, then its key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct EntryId(u64, u64, String);

/// The event in a stream entry; an entry that holds none is skipped with a warning.
fn parse_entry(key: &str, (id, mut fields): Entry) -> Option<(EntryId, Event)> {
    let (ms, seq) = id.split_once('-')?;
    let position = EntryId(ms.parse().ok()?, seq.parse().ok()?, key.to_owned());
    let parsed = fields
        .remove(EVENT_FIELD)
        .map(|json| serde_json::from_str::<Event>(&json));
    match parsed {
        Some(Ok(event)) => Some((position, event)),
        Some(Err(e)) => {
            tracing::warn!(key, entry = %id, error = %e, "redis: skipped an entry that is not an event");
            None
        }
        None => {
            tracing::warn!(key, entry = %id, "redis: skipped an entry without an `event` field");
            None
        }
    }
}

/// A connection manager for `settings.url`, whose replies may take up to `response_timeout`.
async fn connection(
    settings: &BusConfig,
    response_timeout: Duration,
) -> Result<ConnectionManager, SinkError> {
    let url = settings.url.as_deref().ok_or_else(|| {
        SinkError::Rejected("bus kind `redis` needs a `url` such as redis://127.0.0.1:6379".into())
    })?;
    let client = redis::Client::open(url)
        .map_err(|e| SinkError::Rejected(format!("redis: bad url {url}: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        // Reconnection is retried on every later command; a short backoff here keeps a
        // publish against a dead server within its bound.
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    tokio::time::timeout(TIMEOUT, ConnectionManager::new_with_config(client, config))
        .await
        .map_err(|_| SinkError::Unavailable(format!("redis: connecting to {url} timed out")))?
        .map_err(|e| classify(&format!("cannot connect to {url}"), e))
}

/// Runs one round trip within [`TIMEOUT`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, SinkError> {
    tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| SinkError::Unavailable("redis: no reply in time".into()))?
        .map_err(|e| classify("command failed", e))
}

/// Unavailable for what retrying can cure (connection, timeouts, loading, out of memory);
/// Rejected for the rest (wrong type at a key, bad arguments).
fn classify(what: &str, e: RedisError) -> SinkError {
    let message = format!("redis: {what}: {e}");
    let retryable = !matches!(e.retry_method(), RetryMethod::NoRetry)
        || e.is_io_error()
        || e.is_timeout()
        || e.code() == Some("OOM");
    if retryable {
        SinkError::Unavailable(message)
    } else {
        SinkError::Rejected(message)
    }
}

/// `text` with the glob characters of `SCAN MATCH` escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
