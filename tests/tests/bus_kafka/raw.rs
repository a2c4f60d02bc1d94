//! Looking at what the broker stores, below the sink: raw messages with their headers and
//! keys, the binary-mode event they frame checked against its JSON Schema, and a consumer
//! group's committed offsets.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};

/// One stored message as the broker holds it.
#[derive(Debug)]
pub struct Raw {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
    pub value: Vec<u8>,
}

/// Every message of `topic` stored so far, read with a plain consumer from each partition's
/// beginning to the end the fetch reports (partition EOF; Tansu's `ListOffsets` "latest" is
/// the last batch's base offset + 1, so watermarks are not used).
pub fn raw_messages(brokers: &str, topic: &str) -> Vec<Raw> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bus-kafka-raw")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    let mut open: HashSet<i32> = HashSet::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        open.insert(partition.id());
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    if open.is_empty() {
        return Vec::new();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !open.is_empty() && std::time::Instant::now() < deadline {
        let message = match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => message,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
                continue;
            }
            _ => continue,
        };
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                        (h.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Raw {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            headers,
            value: message.payload().unwrap_or_default().to_vec(),
        });
    }
    out
}

/// The JSON Schema validator of `kind` from `schemas/`, if the type has one.
pub fn validator(kind: &str) -> Option<jsonschema::Validator> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(format!("{kind}.json"));
    let text = std::fs::read_to_string(path).ok()?;
    let schema: Value = serde_json::from_str(&text).unwrap();
    Some(
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap(),
    )
}

/// Checks the binary-mode headers of `raw` and returns the event they frame, as the JSON
/// structured event the schemas describe.
pub fn binary_event(raw: &Raw) -> Value {
    let h = &raw.headers;
    assert_eq!(h["ce_specversion"], "1.0", "{h:?}");
    assert_eq!(h["content-type"], "application/json", "{h:?}");
    for name in ["ce_id", "ce_type", "ce_time", "ce_correlationid"] {
        assert!(
            h.get(name).is_some_and(|v| !v.is_empty()),
            "{name} in {h:?}"
        );
    }
    assert!(h["ce_source"].starts_with("strangler://"), "{h:?}");
    assert_eq!(
        raw.key.as_deref(),
        Some(h["ce_correlationid"].as_bytes()),
        "key = correlation id"
    );
    let data: Value = serde_json::from_slice(&raw.value).expect("the value is the JSON data");
    let mut event = json!({
        "specversion": h["ce_specversion"],
        "id": h["ce_id"],
        "source": h["ce_source"],
        "type": h["ce_type"],
        "time": h["ce_time"],
        "datacontenttype": h["content-type"],
        "correlationid": h["ce_correlationid"],
        "data": data,
    });
    if let Some(subject) = h.get("ce_subject") {
        event["subject"] = json!(subject);
    }
    event
}

/// Whether group `group` committed, on every partition of `topic` that holds messages, one
/// past the last message stored there.
pub fn committed_at_end(brokers: &str, topic: &str, group: &str) -> bool {
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for raw in raw_messages(brokers, topic) {
        let end = ends.entry(raw.partition).or_default();
        *end = (*end).max(raw.offset + 1);
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut query = TopicPartitionList::new();
    for partition in ends.keys() {
        query.add_partition(topic, *partition);
    }
    let Ok(committed) = consumer.committed_offsets(query, Duration::from_secs(5)) else {
        return false;
    };
    !ends.is_empty()
        && ends.iter().all(|(partition, end)| {
            committed
                .find_partition(topic, *partition)
                .is_some_and(|p| p.offset() == Offset::Offset(*end))
        })
}
