//! A Kafka consumer group for the extracted services' consumers: offsets are committed only
//! after the event was processed ([`Ack::ack`]), never automatically.
//!
//! Acks may come out of order; a partition's committed offset is the oldest delivered offset
//! not yet acked (or one past the last delivered when all are acked), so a crash before an
//! ack means redelivery, never a skipped event. Consumers stay idempotent by event id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{Quiet, Settings, binding, classify, create_admin, ensure_topics};
use crate::events::Event;
use crate::events::sink::SinkError;

/// A topic and partition.
type Partition = (String, i32);

/// A consumer group member reading the topics of the wanted types.
pub struct Subscription {
    /// The group member; shared with acks, which commit through it.
    consumer: Arc<StreamConsumer<Quiet>>,
    /// What was delivered and not acked, per partition.
    positions: Arc<Mutex<Positions>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

/// Delivered offsets per partition.
#[derive(Debug, Default)]
struct Positions {
    /// Delivered and not acked.
    outstanding: BTreeMap<Partition, BTreeSet<i64>>,
    /// One past the last delivered offset.
    next: BTreeMap<Partition, i64>,
    /// The last committed offset.
    committed: BTreeMap<Partition, i64>,
}

impl Subscription {
    /// Creates the topics when missing (a consumer may start before the proxy), then joins
    /// group `group` on the topics that carry `types` (every topic for none). A new group
    /// starts at the earliest offset kept.
    pub(super) async fn new(
        settings: Settings,
        group: &str,
        types: &[&str],
    ) -> Result<Self, SinkError> {
        let admin = create_admin(&settings)?;
        ensure_topics(&settings, &admin).await?;
        let consumer: StreamConsumer<Quiet> = settings
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create_with_context(Quiet)
            .map_err(|e| super::rejected_settings("consumer", &e))?;
        let all = settings.all_topics();
        let topics: BTreeSet<&str> = if types.is_empty() {
            all.iter().map(String::as_str).collect()
        } else {
            types.iter().map(|t| settings.topic_for(t)).collect()
        };
        let topics: Vec<&str> = topics.into_iter().collect();
        Self::join(consumer, &topics)
    }

    /// Subscribes `consumer` to `topics`.
    fn join(consumer: StreamConsumer<Quiet>, topics: &[&str]) -> Result<Self, SinkError> {
        consumer
            .subscribe(topics)
            .map_err(|e| classify(&format!("subscribing to {topics:?}"), &e))?;
        Ok(Self {
            consumer: Arc::new(consumer),
            positions: Arc::new(Mutex::new(Positions::default())),
        })
    }

    /// The next event and its ack. Messages that hold no event are skipped with a warning
    /// (and count as handled); an `Err` is a broker hiccup, call again.
    pub async fn next(&mut self) -> Result<(Event, Ack), SinkError> {
        loop {
            let message = self
                .consumer
                .recv()
                .await
                .map_err(|e| classify("receiving", &e))?;
            let partition = (message.topic().to_owned(), message.partition());
            let offset = message.offset();
            let decoded = binding::decode(message.headers(), message.payload());
            drop(message);
            let ack = Ack {
                consumer: self.consumer.clone(),
                positions: self.positions.clone(),
                partition,
                offset,
            };
            lock(&self.positions).delivered(&ack.partition, offset);
            match decoded {
                Ok(event) => return Ok((event, ack)),
                Err(e) => {
                    tracing::warn!(topic = %ack.partition.0, partition = ack.partition.1, offset, error = %e, "kafka consumer skipped a message that is not an event");
                    ack.ack().await?;
                }
            }
        }
    }
}

/// Confirms one delivered message: its partition's committed offset moves past it once every
/// earlier delivery was acked too.
pub struct Ack {
    /// Commits through the group member.
    consumer: Arc<StreamConsumer<Quiet>>,
    /// Shared positions.
    positions: Arc<Mutex<Positions>>,
    /// Where the message came from.
    partition: Partition,
    /// Its offset.
    offset: i64,
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Ack {
    /// Commits the partition's new position synchronously; `Ok` once the broker recorded it
    /// (or when nothing moved).
    pub async fn ack(self) -> Result<(), SinkError> {
        let Some(commit) = lock(&self.positions).acked(&self.partition, self.offset) else {
            return Ok(());
        };
        let (topic, partition) = self.partition.clone();
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&topic, partition, Offset::Offset(commit))
                .map_err(|e| classify("committing", &e))?;
            consumer.commit(&list, CommitMode::Sync).map_err(|e| {
                classify(
                    &format!("committing offset {commit} of {topic}/{partition}"),
                    &e,
                )
            })
        })
        .await
        .map_err(|e| SinkError::Unavailable(format!("kafka: the commit stopped: {e}")))??;
        lock(&self.positions)
            .committed
            .insert(self.partition, commit);
        Ok(())
    }
}

impl Positions {
    /// Records `offset` of `partition` as delivered.
    fn delivered(&mut self, partition: &Partition, offset: i64) {
        self.outstanding
            .entry(partition.clone())
            .or_default()
            .insert(offset);
        let next = self.next.entry(partition.clone()).or_insert(0);
        *next = (*next).max(offset + 1);
    }

    /// Records `offset` as acked; the offset to commit when the position moved.
    fn acked(&mut self, partition: &Partition, offset: i64) -> Option<i64> {
        let outstanding = self.outstanding.entry(partition.clone()).or_default();
        outstanding.remove(&offset);
        let position = match outstanding.first() {
            Some(oldest) => *oldest,
            None => *self.next.get(partition)?,
        };
        let moved = self.committed.get(partition).is_none_or(|c| *c < position);
        moved.then_some(position)
    }
}

/// The positions, even if a panic elsewhere poisoned the lock (each change is one insert or
/// remove, so they stay consistent).
fn lock(positions: &Mutex<Positions>) -> std::sync::MutexGuard<'_, Positions> {
    positions.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::Positions;

    #[test]
    fn the_committed_position_waits_for_the_oldest_unacked_offset() {
        let p = ("t".to_owned(), 0);
        let mut positions = Positions::default();
        for offset in 5..8 {
            positions.delivered(&p, offset);
        }
        assert_eq!(positions.acked(&p, 6), Some(5), "5 is not acked: stay at 5");
        positions.committed.insert(p.clone(), 5);
        assert_eq!(positions.acked(&p, 7), None, "still 5");
        assert_eq!(
            positions.acked(&p, 5),
            Some(8),
            "all acked: one past the last"
        );
    }
}
