//! Every type in [`types::ALL`] has a JSON Schema in `schemas/` at the repository root, and
//! events as the proxy writes them validate against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;

fn schema_path(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("schemas")
        .join(format!("{kind}.json"))
}

fn validator(kind: &str) -> jsonschema::Validator {
    let path = schema_path(kind);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{kind} needs a schema at {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{kind}"
    );
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema of {kind} is invalid: {e}"))
}

/// One plausible event of each type, stamped as the publisher stamps them.
fn example(kind: &str) -> Event {
    let (subject, data) = match kind {
        types::EXCHANGE_SEEN => (
            Some("thumbnail"),
            json!({"method": "GET", "path": "/misc/thumbnail", "status": 200, "route": "thumbnail", "upstream": "legacy", "latency_ms": 3}),
        ),
        types::SHADOW_COMPARED => (
            Some("thumbnail"),
            json!({"route": "thumbnail", "verdict": "regression", "differences": [{"pointer": "/status", "legacy": 200, "candidate": 500}]}),
        ),
        types::SHADOW_SKIPPED => (
            Some("thumbnail"),
            json!({"route": "thumbnail", "reason": "queue_full", "method": "GET", "path": "/misc/thumbnail"}),
        ),
        types::ROUTE_CHANGED => (
            Some("thumbnail"),
            json!({"route": "thumbnail", "from": "legacy", "to": "shadow", "by": "file", "reason": null}),
        ),
        types::ROLLOUT_PROMOTED => (
            Some("thumbnail"),
            json!({"route": "thumbnail", "from": 10, "to": 25}),
        ),
        types::ROLLOUT_ROLLED_BACK => (
            Some("thumbnail"),
            json!({"route": "thumbnail", "from": 25, "to": 0, "reason": "regressions"}),
        ),
        types::CONFIG_RELOADED => (
            None,
            json!({"generation": 3, "trigger": "file", "routes": 2, "changed": []}),
        ),
        types::CONFIG_REJECTED => (
            None,
            json!({"trigger": "file", "errors": ["routes.toml:3: unknown key"]}),
        ),
        other => panic!("no example for {other}"),
    };
    let mut event = Event::new(kind, subject, "0190a4c2-7e2a-7b1e-9a9e-3f1f7c7d2a11", data);
    event.source = "strangler://host-1".into();
    event
}

#[test]
fn every_type_has_a_schema_and_its_events_validate() {
    for kind in types::ALL {
        let validator = validator(kind);
        let event = serde_json::to_value(example(kind)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:?}\n{event:#}");
    }
}

#[test]
fn schemas_refuse_a_broken_envelope() {
    let validator = validator(types::EXCHANGE_SEEN);
    let good = serde_json::to_value(example(types::EXCHANGE_SEEN)).unwrap();
    let broken = [
        ("type", json!(types::SHADOW_COMPARED)),
        ("specversion", json!("0.3")),
        ("source", json!("")),
        ("time", json!("yesterday")),
        ("data", json!("text")),
    ];
    for (key, value) in broken {
        let mut event = good.clone();
        event[key] = value;
        assert!(!validator.is_valid(&event), "{key} should be refused");
    }
    let mut event = good;
    event.as_object_mut().unwrap().remove("id");
    assert!(!validator.is_valid(&event), "id is required");
}

#[test]
fn new_events_have_a_v7_id_and_a_millisecond_utc_time() {
    let event = Event::new(types::CONFIG_RELOADED, None, "c", json!({}));
    let id = uuid::Uuid::parse_str(&event.id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(
        event.time.len(),
        "2025-01-31T12:00:00.000Z".len(),
        "{}",
        event.time
    );
    assert!(event.time.ends_with('Z'));
    assert_eq!(event.specversion, SPEC_VERSION);
    assert_eq!(event.datacontenttype, CONTENT_TYPE);
    let text = serde_json::to_value(&event).unwrap();
    assert!(text.get("subject").is_none());
    assert_eq!(text["type"], types::CONFIG_RELOADED);
}
