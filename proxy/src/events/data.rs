//! An event's payload, kept as the JSON text it is published as.
//!
//! The proxy publishes every exchange; building a `serde_json::Value` tree for each payload
//! and serializing it again for every line, message and spool record was most of what the
//! bus cost (bench/hotspots.md). [`Data`] is serialized once from the typed payload and
//! copied verbatim from then on; readers that want to look inside parse it.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// An event's `data`: one JSON value, held as text. `None` inside is JSON `null` (and lets
/// an empty event allocate nothing).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Data(Option<Box<RawValue>>);

impl Data {
    /// The payload serialized as JSON.
    pub fn from_payload(payload: &impl Serialize) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(payload).map(|raw| Self(Some(raw)))
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.as_deref().map_or("null", RawValue::get)
    }

    /// The payload read into `T` (a typed payload, or a `serde_json::Value`).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.json())
    }

    /// The payload as a JSON tree; `null` if it cannot be read (it always can: the text was
    /// written by a serializer or checked when the event was read).
    pub fn value(&self) -> serde_json::Value {
        self.parse().unwrap_or(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for Data {
    fn from(value: serde_json::Value) -> Self {
        // A `Value` always serializes (its map keys are strings); `null` is only a backstop.
        Self::from_payload(&value).unwrap_or_default()
    }
}

/// Equal when the JSON values are equal, whatever the spacing or key order of the text.
impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json() || self.value() == other.value()
    }
}

/// Equal when the payload is that JSON value.
impl PartialEq<serde_json::Value> for Data {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.value() == *other
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_payload_is_kept_as_the_text_it_serializes_to() {
        #[derive(Serialize)]
        struct Payload {
            route: &'static str,
            status: u16,
        }
        let data = Data::from_payload(&Payload {
            route: "orders",
            status: 201,
        })
        .unwrap();
        assert_eq!(data.json(), r#"{"route":"orders","status":201}"#);
        assert_eq!(data.value(), json!({"route": "orders", "status": 201}));
    }

    #[test]
    fn it_is_written_verbatim_and_read_back_equal() {
        let data = Data::from(json!({"a": [1, 2, {"b": "c\"d"}], "e": null}));
        let wrapped = serde_json::to_string(&vec![data.clone()]).unwrap();
        assert_eq!(wrapped, format!("[{}]", data.json()));
        let back: Vec<Data> = serde_json::from_str(&wrapped).unwrap();
        assert_eq!(back, [data]);
    }

    #[test]
    fn equality_is_of_values_not_of_spacing_or_key_order() {
        let compact: Data = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let spaced: Data = serde_json::from_str(r#"{ "b": 2, "a": 1 }"#).unwrap();
        assert_eq!(compact, spaced);
        assert_ne!(compact, Data::from(json!({"a": 1, "b": 3})));
    }

    #[test]
    fn null_allocates_nothing_and_round_trips() {
        let empty = Data::default();
        assert_eq!(empty.json(), "null");
        assert_eq!(serde_json::to_string(&empty).unwrap(), "null");
        let back: Data = serde_json::from_str("null").unwrap();
        assert_eq!(back, empty);
        assert_eq!(Data::from(serde_json::Value::Null), empty);
    }

    #[test]
    fn it_reads_from_a_json_tree_too() {
        let tree = json!({"data": {"n": 7}});
        #[derive(Deserialize)]
        struct Holder {
            data: Data,
        }
        let holder: Holder = serde_json::from_value(tree).unwrap();
        assert_eq!(holder.data.value(), json!({"n": 7}));
    }
}
