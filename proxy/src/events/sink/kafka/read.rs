//! Reading stored events back (`events tail`, `events replay`): every partition of every
//! topic, from where the read starts until the consumer reaches each partition's end, merged
//! by event time.
//!
//! The end is the partition EOF the fetch responses report, not a `ListOffsets` answer:
//! Tansu 0.6 answers "latest" with the last batch's base offset + 1 and "by time" with the
//! batch stored first after that time (by storage time, not record time). Start offsets from
//! `ListOffsets` are only ever used as lower bounds, and reads by time also filter on the
//! event's own time, so both brokers give the same answer; Tansu's just reads more.
//!
//! A plain consumer with assigned partitions and no group commits: a read never moves any
//! consumer group's position. librdkafka's consumer calls block, so the read runs on a
//! blocking thread, bounded by [`DEADLINE`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{Quiet, Settings, TIMEOUT, binding, classify};
use crate::events::Event;
use crate::events::sink::{ReadFrom, SinkError};

/// The longest a whole read may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// An event found, with where it sorts: event time, then topic, partition and offset.
type Found = (SystemTime, String, i32, i64, Event);

/// Up to `limit` events from `from` on, oldest first (see [`super::KafkaSink::read`]).
pub(super) async fn read(
    settings: Arc<Settings>,
    from: ReadFrom,
    limit: usize,
) -> Result<Vec<Event>, SinkError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    tokio::task::spawn_blocking(move || read_blocking(&settings, from, limit))
        .await
        .map_err(|e| SinkError::Unavailable(format!("kafka: the read stopped: {e}")))?
}

fn read_blocking(
    settings: &Settings,
    from: ReadFrom,
    limit: usize,
) -> Result<Vec<Event>, SinkError> {
    let skip = match from {
        ReadFrom::Offset(n) => usize::try_from(n).unwrap_or(usize::MAX),
        _ => 0,
    };
    // Oldest first per partition, so a partition never gives more than this many (a tail
    // keeps the newest this many).
    let per_partition = match from {
        ReadFrom::Tail(n) => n.min(limit),
        _ => limit.saturating_add(skip),
    };
    let deadline = Instant::now() + DEADLINE;
    let mut found: Vec<Found> = Vec::new();
    for topic in settings.all_topics() {
        found.extend(read_topic(settings, &topic, from, per_partition, deadline)?);
    }
    found.sort_by(|a, b| (a.0, &a.1, a.2, a.3).cmp(&(b.0, &b.1, b.2, b.3)));
    let events = found.into_iter().map(|(.., event)| event);
    Ok(match from {
        ReadFrom::Tail(n) => {
            let all: Vec<Event> = events.collect();
            let keep = n.min(limit);
            all[all.len().saturating_sub(keep)..].to_vec()
        }
        ReadFrom::Offset(_) => events.skip(skip).take(limit).collect(),
        ReadFrom::Start | ReadFrom::Time(_) => events.take(limit).collect(),
    })
}

/// The events of one topic (each partition from its start to its EOF, at most
/// `per_partition`); a topic that does not exist has none.
fn read_topic(
    settings: &Settings,
    topic: &str,
    from: ReadFrom,
    per_partition: usize,
    deadline: Instant,
) -> Result<Vec<Found>, SinkError> {
    let consumer: BaseConsumer<Quiet> = settings
        .client_config()
        .set("group.id", "strangler-read")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .create_with_context(Quiet)
        .map_err(|e| super::rejected_settings("consumer", &e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| classify(&format!("reading the metadata of `{topic}`"), &e))?;
    let Some(partitions) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
    else {
        return Ok(Vec::new());
    };
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        let start = start_offset(&consumer, topic, partition, from, per_partition)?;
        assignment
            .add_partition_offset(topic, partition, start)
            .map_err(|e| classify("assigning a partition", &e))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| classify(&format!("assigning the partitions of `{topic}`"), &e))?;
    let since = match from {
        ReadFrom::Time(at) => Some(at),
        _ => None,
    };
    let mut open: BTreeMap<i32, VecDeque<Found>> =
        partitions.iter().map(|p| (*p, VecDeque::new())).collect();
    let mut done = Vec::new();
    while !open.is_empty() {
        if Instant::now() >= deadline {
            return Err(SinkError::Unavailable(format!(
                "kafka: reading `{topic}` took longer than {}s ({} partition(s) not at their end)",
                DEADLINE.as_secs(),
                open.len()
            )));
        }
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                if let Some(events) = open.remove(&partition) {
                    done.extend(events);
                }
                continue;
            }
            Some(Err(e)) => return Err(classify(&format!("reading `{topic}`"), &e)),
            Some(Ok(message)) => message,
        };
        let (partition, offset) = (message.partition(), message.offset());
        let Some(events) = open.get_mut(&partition) else {
            continue;
        };
        match binding::decode(message.headers(), message.payload()) {
            Ok(event) => {
                let time = humantime::parse_rfc3339_weak(&event.time).unwrap_or(UNIX_EPOCH);
                if since.is_none_or(|at| time >= at) {
                    events.push_back((time, topic.to_owned(), partition, offset, event));
                }
            }
            Err(e) => {
                tracing::warn!(topic, partition, offset, error = %e, "kafka: skipped a message that is not an event");
            }
        }
        let full = events.len() >= per_partition;
        if full && matches!(from, ReadFrom::Tail(_)) {
            events.pop_front();
        } else if full {
            if let Some(events) = open.remove(&partition) {
                done.extend(events);
            }
        }
    }
    Ok(done)
}

/// Where a partition's read starts: never after the first event the read wants (on Tansu,
/// often earlier; the events before are filtered or dropped from the tail).
fn start_offset(
    consumer: &BaseConsumer<Quiet>,
    topic: &str,
    partition: i32,
    from: ReadFrom,
    per_partition: usize,
) -> Result<Offset, SinkError> {
    let offsets = |what: &str, e: &KafkaError| {
        classify(
            &format!("reading the {what} offset of {topic}/{partition}"),
            e,
        )
    };
    Ok(match from {
        ReadFrom::Start | ReadFrom::Offset(_) => Offset::Beginning,
        ReadFrom::Tail(_) => {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .map_err(|e| offsets("end", &e))?;
            let back = i64::try_from(per_partition).unwrap_or(i64::MAX);
            Offset::Offset(high.saturating_sub(back).max(low))
        }
        ReadFrom::Time(at) => {
            let ms = at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let mut query = TopicPartitionList::new();
            query
                .add_partition_offset(topic, partition, Offset::Offset(ms))
                .map_err(|e| offsets("time", &e))?;
            let answer = consumer
                .offsets_for_times(query, TIMEOUT)
                .map_err(|e| offsets("time", &e))?;
            match answer.find_partition(topic, partition).map(|p| p.offset()) {
                Some(Offset::Offset(n)) => Offset::Offset(n),
                // Every message is older: nothing to read but the end.
                Some(Offset::End) => Offset::End,
                _ => Offset::Beginning,
            }
        }
    })
}
