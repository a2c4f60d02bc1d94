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

/// One event of each type, built by the code that emits it where it is reachable, stamped as
/// the publisher stamps them.
fn example(kind: &str) -> Event {
    let mut event = match kind {
        types::EXCHANGE_SEEN => exchange_seen(),
        types::SHADOW_COMPARED => {
            let latency = exchange::Latency {
                ttfb_ms: 1.5,
                total_ms: 2.25,
            };
            let compared = exchange::ShadowCompared {
                route: "thumbnail".into(),
                correlation: "r-1".into(),
                method: "GET".into(),
                path: "/misc/thumbnail?w=10".into(),
                verdict: "regression".into(),
                differences: vec![exchange::Difference {
                    pointer: "/status".into(),
                    legacy: Some(json!(200)),
                    candidate: Some(json!(500)),
                    noise: false,
                }],
                total: 1,
                latency: exchange::LatencyPair {
                    legacy: latency,
                    candidate: latency,
                },
                baseline_samples: 12,
            };
            exchange::event(kind, Some("thumbnail"), "r-1", &compared).unwrap()
        }
        types::SHADOW_SKIPPED => {
            let skipped = exchange::ShadowSkipped {
                route: "thumbnail".into(),
                correlation: "r-1".into(),
                reason: "queue_full".into(),
                method: "GET".into(),
                path: "/misc/thumbnail".into(),
            };
            exchange::event(kind, Some("thumbnail"), "r-1", &skipped).unwrap()
        }
        types::CONFIG_RELOADED | types::ROUTE_CHANGED => {
            let change = exchange::ModeChange {
                route: "thumbnail".into(),
                from: "shadow".into(),
                to: "canary".into(),
                from_percent: None,
                to_percent: Some(12.5),
            };
            let events = exchange::reloaded_events(3, "file", 2, vec![change], |_| None);
            events.into_iter().find(|e| e.kind == kind).unwrap()
        }
        types::CONFIG_REJECTED => {
            let errors = crate::config::from_toml_str("nonsense = 1\n", "routes.toml").unwrap_err();
            exchange::rejected_event("file", &errors).unwrap()
        }
        types::ROLLOUT_PROMOTED | types::ROLLOUT_ROLLED_BACK => {
            // As `rollout::auto` builds it.
            let data = json!({
                "route": "thumbnail",
                "from": "canary 10%",
                "to": "canary 25%",
                "reason": "0 regressions in 200 samples",
                "figures": { "samples": 200, "regressions": 0 },
                "gate": { "promote": {}, "rollback": {} },
            });
            Event::new(
                kind,
                Some("thumbnail"),
                "0190a4c2-7e2a-7b1e-9a9e-3f1f7c7d2a11",
                data,
            )
        }
        other => panic!("no example for {other}"),
    };
    event.source = "strangler://host-1".into();
    event
}

fn exchange_seen() -> Event {
    let seen: exchange::ExchangeSeen = exchange::ExchangeSeen {
        route: Some("products".into()),
        mode: Some("shadow".into()),
        method: "GET".into(),
        path_template: Some("/api/products/{sku}".into()),
        path: "/api/products/A-1".into(),
        params: [("sku".to_owned(), "A-1".to_owned())].into(),
        query: None,
        status: 200,
        upstream: Some("legacy".into()),
        side: "legacy".into(),
        latency: exchange::Latency {
            ttfb_ms: 0.5,
            total_ms: 0.75,
        },
        sizes: exchange::Sizes {
            request_bytes: 0,
            response_bytes: 42,
        },
        request_headers: [("authorization".to_owned(), exchange::REDACTED.to_owned())].into(),
        response_headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
        request_body: None,
        response_body: Some(exchange::BodyCopy {
            encoding: "utf8".into(),
            data: "{}".into(),
            truncated: false,
        }),
        complete: true,
    };
    exchange::event(types::EXCHANGE_SEEN, Some("products"), "r-1", &seen).unwrap()
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
    let mut event = good.clone();
    event.as_object_mut().unwrap().remove("id");
    assert!(!validator.is_valid(&event), "id is required");
    let mut event = good;
    event["data"]["side"] = json!("candidate");
    assert!(!validator.is_valid(&event), "the data part is checked too");
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
