//! The CloudEvents Kafka protocol binding: an [`Event`] as a Kafka message and back.
//!
//! Binary content mode (the default): the attributes travel as headers (`ce_specversion`,
//! `ce_id`, `ce_source`, `ce_type`, `ce_time`, and `ce_subject`, `ce_correlationid` when
//! present), `content-type` is the data's media type (`application/json`) and the value is
//! the data alone, so a consumer that knows nothing of CloudEvents reads plain JSON.
//! Structured mode: the whole JSON event is the value, `content-type:
//! application/cloudevents+json; charset=UTF-8`. Decoding accepts both, whatever the sink's
//! own mode, so a mode change does not strand what is already stored.

use rdkafka::message::{Header, Headers, OwnedHeaders};

use crate::events::sink::SinkError;
use crate::events::{Data, Event};

/// The `content-type` of a structured-mode message.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";
/// The header every binary-mode message carries.
const SPEC_VERSION: &str = "ce_specversion";

/// An event framed for Kafka.
#[derive(Debug)]
pub struct Message {
    /// The `ce_*` and `content-type` headers.
    pub headers: OwnedHeaders,
    /// The data (binary mode) or the whole event (structured mode), as JSON.
    pub value: Vec<u8>,
    /// The event time in milliseconds, as the record's timestamp (so reads by time work).
    pub timestamp_ms: Option<i64>,
}

/// Frames `event` in `format`; an event that cannot be serialized is [`SinkError::Rejected`].
pub fn encode(event: &Event, format: crate::config::KafkaFormat) -> Result<Message, SinkError> {
    let unserializable = |e: serde_json::Error| {
        SinkError::Rejected(format!("event {} cannot be serialized: {e}", event.id))
    };
    let timestamp_ms = humantime::parse_rfc3339_weak(&event.time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    let message = match format {
        crate::config::KafkaFormat::Binary => {
            let mut headers = OwnedHeaders::new_with_capacity(8);
            for (key, value) in [
                (SPEC_VERSION, Some(event.specversion.as_str())),
                ("ce_id", Some(event.id.as_str())),
                ("ce_source", Some(event.source.as_str())),
                ("ce_type", Some(event.kind.as_str())),
                ("ce_time", Some(event.time.as_str())),
                ("ce_subject", event.subject.as_deref()),
                (
                    "ce_correlationid",
                    Some(event.correlationid.as_str()).filter(|c| !c.is_empty()),
                ),
                ("content-type", Some(event.datacontenttype.as_str())),
            ] {
                if let Some(value) = value {
                    headers = headers.insert(Header {
                        key,
                        value: Some(value),
                    });
                }
            }
            Message {
                headers,
                value: event.data.json().as_bytes().to_vec(),
                timestamp_ms,
            }
        }
        crate::config::KafkaFormat::Structured => Message {
            headers: OwnedHeaders::new_with_capacity(1).insert(Header {
                key: "content-type",
                value: Some(STRUCTURED_CONTENT_TYPE),
            }),
            value: serde_json::to_vec(event).map_err(unserializable)?,
            timestamp_ms,
        },
    };
    Ok(message)
}

/// The event in a message with `headers` and `value`, in either mode. A message that holds
/// no event is [`SinkError::Rejected`], naming what is missing.
pub fn decode<H: Headers>(headers: Option<&H>, value: Option<&[u8]>) -> Result<Event, SinkError> {
    let header = |name: &str| -> Option<String> {
        let headers = headers?;
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let value = value.unwrap_or_default();
    let Some(specversion) = header(SPEC_VERSION) else {
        // Structured mode (or a message that is no event at all).
        return serde_json::from_slice(value).map_err(|e| {
            SinkError::Rejected(format!(
                "a message without ce_* headers is not a JSON event: {e}"
            ))
        });
    };
    let required = |name: &str| {
        header(name).ok_or_else(|| {
            SinkError::Rejected(format!("a binary-mode event lacks the `{name}` header"))
        })
    };
    let data = if value.is_empty() {
        Data::default()
    } else {
        serde_json::from_slice(value).map_err(|e| {
            SinkError::Rejected(format!("a binary-mode event's data is not JSON: {e}"))
        })?
    };
    Ok(Event {
        specversion,
        id: required("ce_id")?,
        source: required("ce_source")?,
        kind: required("ce_type")?,
        time: required("ce_time")?,
        datacontenttype: header("content-type").unwrap_or_else(|| "application/json".to_owned()),
        subject: header("ce_subject"),
        correlationid: header("ce_correlationid").unwrap_or_default(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::{STRUCTURED_CONTENT_TYPE, decode, encode};
    use crate::config::KafkaFormat;
    use crate::events::Event;

    fn event(subject: Option<&str>) -> Event {
        let mut event = Event::new(
            "shop.order.placed",
            subject,
            "corr-1",
            serde_json::json!({"order": 7, "items": ["a"]}),
        );
        event.source = "strangler://test".into();
        event
    }

    fn header_map(headers: &rdkafka::message::OwnedHeaders) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn binary_mode_puts_attributes_in_headers_and_data_in_the_value() {
        let event = event(Some("orders"));
        let message = encode(&event, KafkaFormat::Binary).expect("encodes");
        let headers = header_map(&message.headers);
        let want = [
            ("ce_specversion", "1.0"),
            ("ce_id", event.id.as_str()),
            ("ce_source", "strangler://test"),
            ("ce_type", "shop.order.placed"),
            ("ce_time", event.time.as_str()),
            ("ce_subject", "orders"),
            ("ce_correlationid", "corr-1"),
            ("content-type", "application/json"),
        ];
        for (key, value) in want {
            assert!(
                headers.iter().any(|(k, v)| k == key && v == value),
                "{key}: {value} in {headers:?}"
            );
        }
        assert_eq!(headers.len(), want.len());
        let data: serde_json::Value = serde_json::from_slice(&message.value).expect("json");
        assert_eq!(data, event.data.value());
        assert!(message.timestamp_ms.is_some_and(|ms| ms > 0));
        let back = decode(Some(&message.headers), Some(&message.value)).expect("decodes");
        assert_eq!(back, event);
    }

    #[test]
    fn binary_mode_leaves_out_absent_attributes() {
        let mut event = event(None);
        event.correlationid.clear();
        let message = encode(&event, KafkaFormat::Binary).expect("encodes");
        let headers = header_map(&message.headers);
        assert!(
            !headers
                .iter()
                .any(|(k, _)| k == "ce_subject" || k == "ce_correlationid"),
            "{headers:?}"
        );
        assert_eq!(
            decode(Some(&message.headers), Some(&message.value)).expect("decodes"),
            event
        );
    }

    #[test]
    fn structured_mode_carries_the_whole_event() {
        let event = event(Some("orders"));
        let message = encode(&event, KafkaFormat::Structured).expect("encodes");
        assert_eq!(
            header_map(&message.headers),
            vec![(
                "content-type".to_owned(),
                STRUCTURED_CONTENT_TYPE.to_owned()
            )]
        );
        let whole: Event = serde_json::from_slice(&message.value).expect("an event");
        assert_eq!(whole, event);
        assert_eq!(
            decode(Some(&message.headers), Some(&message.value)).expect("decodes"),
            event
        );
    }

    #[test]
    fn messages_without_an_event_are_rejected_with_the_reason() {
        let none: Option<&rdkafka::message::OwnedHeaders> = None;
        let err = decode(none, Some(b"not json")).expect_err("no event");
        assert!(err.to_string().contains("not a JSON event"), "{err}");
        let partial = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "ce_specversion",
            value: Some("1.0"),
        });
        let err = decode(Some(&partial), Some(b"{}")).expect_err("no id");
        assert!(err.to_string().contains("ce_id"), "{err}");
    }
}
