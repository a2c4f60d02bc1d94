//! The consuming side, for extracted services: a consumer group over the types' stream keys,
//! read with `XREADGROUP` and confirmed with `XACK`.
//!
//! A subscriber first reads its own pending entries (delivered before a crash, never acked),
//! then new ones. Delivery is at-least-once and a retried publish is stored twice under the
//! same event `id`, so a consumer drops an id it has already handled.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use redis::aio::ConnectionManager;

use super::{EVENT_FIELD, RedisSink, TIMEOUT, bounded, classify, connection};
use crate::config::BusConfig;
use crate::events::Event;
use crate::events::sink::SinkError;

/// Entries asked for per `XREADGROUP`.
const READ_COUNT: usize = 256;
/// How long one `XREADGROUP` waits for new entries.
const BLOCK: Duration = Duration::from_secs(1);
/// The pause after a failed read, so an outage does not spin.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// `XREADGROUP` replies: per key, entries whose fields are gone (`None`) once trimmed away.
type ReadReply = Option<Vec<(String, Vec<(String, Option<HashMap<String, String>>)>)>>;

/// Confirms one delivered event with `XACK`; until then it stays pending for this consumer.
#[derive(Debug)]
pub struct Ack {
    /// Where to send the `XACK` (not the blocking reader's connection).
    conn: ConnectionManager,
    /// The consumer group.
    group: Arc<str>,
    /// The stream key the entry is in.
    key: String,
    /// The entry id (`<ms>-<seq>`).
    entry: String,
}

impl Ack {
    /// Tells Redis the event was handled, so it leaves this consumer's pending list.
    pub async fn ack(mut self) -> Result<(), SinkError> {
        let command = redis::cmd("XACK")
            .arg(&self.key)
            .arg(&*self.group)
            .arg(&self.entry)
            .to_owned();
        bounded(command.query_async::<i64>(&mut self.conn))
            .await
            .map(|_| ())
    }
}

/// What the subscription stream carries between items.
struct Cursor {
    /// Blocking reads (`XREADGROUP … BLOCK`).
    reader: ConnectionManager,
    /// Acks, apart from the reader so they never wait behind a blocked read.
    acker: ConnectionManager,
    group: Arc<str>,
    consumer: String,
    keys: Vec<String>,
    /// While re-reading this consumer's pending entries, the last one seen per key (from `0`);
    /// `None` once they are done and new entries (`>`) are read.
    backlog: Option<Vec<String>>,
    /// Entries read, not handed out yet.
    ready: VecDeque<Result<(Event, Ack), SinkError>>,
    /// Set after a failed read: pause before the next one.
    failed: bool,
}

impl RedisSink {
    /// Consumes the streams of `types` in `settings`' key prefix as `consumer` of the consumer
    /// group `group` (created at the start of each stream when missing).
    ///
    /// Each item is an event with its [`Ack`]. An item `Err(Unavailable)` reports a broker
    /// hiccup and the stream goes on (the connection reconnects); an entry that is not an
    /// event is acked and reported as `Err(Rejected)`.
    pub async fn subscribe(
        settings: &BusConfig,
        group: &str,
        consumer: &str,
        types: &[&str],
    ) -> Result<
        impl Stream<Item = Result<(Event, Ack), SinkError>> + Send + Unpin + 'static,
        SinkError,
    > {
        if types.is_empty() {
            return Err(SinkError::Rejected(
                "redis: subscribe needs at least one event type".into(),
            ));
        }
        let reader = connection(settings, BLOCK + TIMEOUT).await?;
        let mut acker = connection(settings, TIMEOUT).await?;
        let keys: Vec<String> = types
            .iter()
            .map(|kind| format!("{}:{kind}", settings.key_prefix))
            .collect();
        for key in &keys {
            let created = bounded(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(key)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async::<()>(&mut acker),
            )
            .await;
            match created {
                Err(SinkError::Rejected(message)) if message.contains("BUSYGROUP") => {}
                other => other?,
            }
        }
        let cursor = Cursor {
            reader,
            acker,
            group: group.into(),
            consumer: consumer.to_owned(),
            backlog: Some(vec!["0".to_owned(); keys.len()]),
            keys,
            ready: VecDeque::new(),
            failed: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            cursor,
            |mut cursor| async move {
                loop {
                    if let Some(item) = cursor.ready.pop_front() {
                        return Some((item, cursor));
                    }
                    if let Err(e) = cursor.read().await {
                        return Some((Err(e), cursor));
                    }
                }
            },
        )))
    }
}

impl Cursor {
    /// One `XREADGROUP` into `ready`.
    async fn read(&mut self) -> Result<(), SinkError> {
        if std::mem::take(&mut self.failed) {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&*self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(READ_COUNT);
        if self.backlog.is_none() {
            command.arg("BLOCK").arg(BLOCK.as_millis() as u64);
        }
        command.arg("STREAMS").arg(&self.keys);
        match &self.backlog {
            Some(after) => command.arg(after),
            None => command.arg(vec![">"; self.keys.len()]),
        };
        let reply: ReadReply =
            tokio::time::timeout(BLOCK + TIMEOUT, command.query_async(&mut self.reader))
                .await
                .map_err(|_| {
                    self.failed = true;
                    SinkError::Unavailable("redis: no reply to XREADGROUP in time".into())
                })?
                .map_err(|e| {
                    self.failed = true;
                    classify("XREADGROUP failed", e)
                })?;
        let mut found = 0;
        for (key, entries) in reply.unwrap_or_default() {
            for (entry, fields) in entries {
                found += 1;
                if let (Some(after), Some(i)) =
                    (&mut self.backlog, self.keys.iter().position(|k| *k == key))
                {
                    after[i].clone_from(&entry);
                }
                self.take(&key, entry, fields).await;
            }
        }
        if found == 0 {
            self.backlog = None;
        }
        Ok(())
    }

    /// Queues one delivered entry, acking at once what no consumer can use.
    async fn take(&mut self, key: &str, entry: String, fields: Option<HashMap<String, String>>) {
        let ack = Ack {
            conn: self.acker.clone(),
            group: self.group.clone(),
            key: key.to_owned(),
            entry,
        };
        let Some(fields) = fields else {
            // Trimmed away (MAXLEN) while pending: nothing is left to deliver.
            if let Err(e) = ack.ack().await {
                self.ready.push_back(Err(e));
            }
            return;
        };
        let problem = match fields
            .get(EVENT_FIELD)
            .map(|json| serde_json::from_str(json))
        {
            Some(Ok(event)) => {
                self.ready.push_back(Ok((event, ack)));
                return;
            }
            Some(Err(e)) => e.to_string(),
            None => format!("no `{EVENT_FIELD}` field"),
        };
        let message = format!(
            "redis: entry {} in `{key}` is not an event: {problem}",
            ack.entry
        );
        if let Err(e) = ack.ack().await {
            tracing::debug!(error = %e, "redis: acking a bad entry failed");
        }
        self.ready.push_back(Err(SinkError::Rejected(message)));
    }
}
