//! The sink's settings without a broker: topics per type, and the delivery guarantees that
//! `[bus.kafka]` cannot override.

use super::Settings;
use crate::config::{BusConfig, BusKind, KafkaCompression};

fn bus() -> BusConfig {
    let mut bus = BusConfig {
        kind: BusKind::Kafka,
        brokers: Some("127.0.0.1:1".into()),
        compression: KafkaCompression::Lz4,
        ..BusConfig::default()
    };
    bus.topics_by_type
        .insert("shop.order.placed".into(), "shop.orders".into());
    bus.kafka.insert("linger.ms".into(), "7".into());
    bus
}

#[test]
fn types_go_to_their_topic_and_every_topic_is_listed_once() {
    let settings = Settings::from_bus(&bus()).expect("settings");
    assert_eq!(settings.topic_for("shop.order.placed"), "shop.orders");
    assert_eq!(
        settings.topic_for("strangler.exchange.seen.v1"),
        "strangler.events"
    );
    assert_eq!(settings.all_topics(), ["shop.orders", "strangler.events"]);
}

#[test]
fn the_producer_is_idempotent_with_every_ack_and_passes_other_settings_through() {
    let mut bus = bus();
    // Validation refuses these; the producer config still puts its own last.
    bus.kafka.insert("acks".into(), "1".into());
    bus.kafka
        .insert("enable.idempotence".into(), "false".into());
    let config = Settings::from_bus(&bus)
        .expect("settings")
        .producer_config();
    assert_eq!(config.get("acks"), Some("all"));
    assert_eq!(config.get("enable.idempotence"), Some("true"));
    assert_eq!(config.get("compression.codec"), Some("lz4"));
    assert_eq!(config.get("linger.ms"), Some("7"));
    assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:1"));
}

#[test]
fn a_kafka_bus_without_brokers_is_rejected() {
    let bus = BusConfig {
        brokers: None,
        ..bus()
    };
    let err = Settings::from_bus(&bus).expect_err("no brokers");
    assert!(err.to_string().contains("brokers"), "{err}");
}
