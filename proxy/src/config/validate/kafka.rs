//! Checks of a `kind = "kafka"` bus: the brokers, topic names Kafka accepts, topic sizes, and
//! the `[bus.kafka]` client settings, of which those that would weaken delivery (fewer acks,
//! no idempotence, reordering retries, auto-commit before processing) are refused.

use super::Checks;
use crate::config::diagnostic::KeyPath;

/// The longest topic name Kafka accepts.
const MAX_TOPIC: usize = 249;

impl Checks<'_> {
    /// Everything a Kafka bus needs beyond the spool.
    pub(super) fn kafka(&mut self, path: &KeyPath) {
        let bus = &self.raw.bus;
        match bus.brokers.as_deref() {
            None => self.push(
                path.key("kind"),
                "bus kind `kafka` needs `brokers`",
                "add brokers = \"127.0.0.1:9092\" (comma-separated host:port list)",
            ),
            Some(list) => {
                if let Some(bad) = list.split(',').map(str::trim).find(|b| !host_port(b)) {
                    self.push(
                        path.key("brokers"),
                        format!("\"{bad}\" is not a host:port broker address"),
                        "write e.g. brokers = \"127.0.0.1:9092,127.0.0.1:9093\"",
                    );
                }
            }
        }
        if let Some(why) = topic_problem(&bus.topic) {
            self.push(path.key("topic"), why, "e.g. topic = \"strangler.events\"");
        }
        for (kind, topic) in &bus.topics_by_type {
            if let Some(why) = topic_problem(topic) {
                self.push(
                    path.key("topics_by_type").key(kind),
                    why,
                    "e.g. \"shop.order.placed\" = \"shop.orders\"",
                );
            }
        }
        if bus.partitions == 0 {
            self.push(
                path.key("partitions"),
                "must be greater than 0",
                "e.g. partitions = 3",
            );
        }
        if bus.replication_factor == 0 {
            self.push(
                path.key("replication_factor"),
                "must be greater than 0",
                "e.g. replication_factor = 1 (3 on a production cluster)",
            );
        }
        for (key, value) in &bus.kafka {
            if let Some((why, hint)) = setting_problem(key, value) {
                self.push(path.key("kafka").key(key), why, hint);
            }
        }
    }
}

/// Why `topic` is not a Kafka topic name, if it is not one.
fn topic_problem(topic: &str) -> Option<String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty() || topic == "." || topic == ".." {
        Some(format!("\"{topic}\" is not a Kafka topic name"))
    } else if topic.len() > MAX_TOPIC {
        Some(format!(
            "a topic name has at most {MAX_TOPIC} characters ({} here)",
            topic.len()
        ))
    } else if !topic.chars().all(legal) {
        Some(format!(
            "\"{topic}\" is not a Kafka topic name: use letters, digits, `.`, `_` and `-`"
        ))
    } else {
        None
    }
}

/// Whether `text` is `host:port` with a non-empty host and a port number.
fn host_port(text: &str) -> bool {
    text.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Why a `[bus.kafka]` setting is refused, and what to do instead; `None` when it may pass
/// through to librdkafka (which checks names and values itself when the sink connects).
pub(crate) fn setting_problem(key: &str, value: &str) -> Option<(String, String)> {
    let value = value.trim();
    let refuse = |why: &str, hint: &str| Some((format!("`{key}` {why}"), hint.to_owned()));
    match key {
        "acks" | "request.required.acks" if !matches!(value, "all" | "-1") => refuse(
            "would let the broker acknowledge an event before every in-sync replica has it",
            "remove it: the proxy always uses acks = all",
        ),
        "enable.idempotence" if value != "true" => refuse(
            "would let a retried batch be stored twice or out of order",
            "remove it: the producer is always idempotent",
        ),
        "max.in.flight.requests.per.connection" | "max.in.flight"
            if value.parse::<u32>().map_or(true, |n| n > 5) =>
        {
            refuse(
                "above 5 breaks the idempotent producer's ordering guarantee",
                "use a number from 1 to 5, or remove it (default 5)",
            )
        }
        "enable.gapless.guarantee" if value == "false" => refuse(
            "= false would allow gaps in what the producer delivers",
            "remove it",
        ),
        "retries" | "message.send.max.retries" if value == "0" => refuse(
            "= 0 turns a broker hiccup into a failed batch the spool must take",
            "remove it (librdkafka retries within message.timeout.ms)",
        ),
        "enable.auto.commit" | "enable.auto.offset.store" if value != "false" => refuse(
            "would commit a consumer's offsets before the event is processed",
            "remove it: consumers commit after processing",
        ),
        "bootstrap.servers" | "metadata.broker.list" => {
            refuse("is set by `brokers`", "set [bus] brokers instead")
        }
        "compression.codec" | "compression.type" => refuse(
            "is set by `compression`",
            "set [bus] compression = \"none\" | \"gzip\" | \"lz4\" | \"zstd\" instead",
        ),
        "group.id" => refuse(
            "is set per consumer (its name)",
            "remove it: each consumer's name is its group",
        ),
        "transactional.id" => refuse(
            "is not supported: the proxy's delivery is at-least-once with idempotent consumers",
            "remove it",
        ),
        _ if key.trim().is_empty() || value.is_empty() => Some((
            format!("`{key}` has an empty name or value"),
            "write a librdkafka setting such as \"linger.ms\" = \"5\"".to_owned(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::setting_problem;
    use crate::config::{KafkaCompression, KafkaFormat, Location, from_toml_str};

    const HEAD: &str =
        "default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n";

    /// Each error as `key (line N): message`.
    fn errors(bus: &str) -> Vec<String> {
        match from_toml_str(&format!("{HEAD}[bus]\n{bus}"), "t.toml") {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .0
                .iter()
                .map(|d| {
                    let line = match &d.location {
                        Some(Location::File { line, .. }) => *line,
                        _ => 0,
                    };
                    format!("{} (line {line}): {}", d.key, d.message)
                })
                .collect(),
        }
    }

    #[test]
    fn every_key_parses() {
        let text = format!(
            "{HEAD}[bus]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9092, localhost:9093\"\ntopic = \"t.events\"\npartitions = 6\nreplication_factor = 2\ncompression = \"zstd\"\nformat = \"structured\"\n[bus.topics_by_type]\n\"shop.order.placed\" = \"shop.orders\"\n[bus.kafka]\n\"linger.ms\" = 5\n\"acks\" = \"all\"\n\"enable.idempotence\" = true\n"
        );
        let config = from_toml_str(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let bus = &config.raw().bus;
        assert_eq!(
            bus.brokers.as_deref(),
            Some("127.0.0.1:9092, localhost:9093")
        );
        assert_eq!(
            (bus.topic.as_str(), bus.partitions, bus.replication_factor),
            ("t.events", 6, 2)
        );
        assert_eq!(bus.compression, KafkaCompression::Zstd);
        assert_eq!(bus.format, KafkaFormat::Structured);
        assert_eq!(
            bus.topics_by_type
                .get("shop.order.placed")
                .map(String::as_str),
            Some("shop.orders")
        );
        assert_eq!(bus.kafka.get("linger.ms").map(String::as_str), Some("5"));
        assert_eq!(
            bus.kafka.get("enable.idempotence").map(String::as_str),
            Some("true"),
            "numbers and flags may be written bare"
        );
        let defaults = from_toml_str(
            &format!("{HEAD}[bus]\nkind = \"kafka\"\nbrokers = \"h:1\"\n"),
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let bus = &defaults.raw().bus;
        assert_eq!(
            (bus.topic.as_str(), bus.partitions, bus.replication_factor),
            ("strangler.events", 3, 1)
        );
        assert_eq!(
            (bus.compression, bus.format),
            (KafkaCompression::None, KafkaFormat::Binary)
        );
    }

    #[test]
    fn weakening_settings_are_refused_at_their_line() {
        let errs = errors(
            "kind = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\n[bus.kafka]\n\"linger.ms\" = \"5\"\n\"acks\" = \"1\"\n\"enable.idempotence\" = \"false\"\n\"max.in.flight\" = \"10\"\n\"enable.gapless.guarantee\" = \"false\"\n\"enable.auto.commit\" = \"true\"\n\"bootstrap.servers\" = \"x:1\"\n",
        );
        for (key, line) in [
            ("acks", 9),
            ("\"enable.idempotence\"", 10),
            ("\"max.in.flight\"", 11),
            ("\"enable.gapless.guarantee\"", 12),
            ("\"enable.auto.commit\"", 13),
            ("\"bootstrap.servers\"", 14),
        ] {
            let want = format!("bus.kafka.{key} (line {line})");
            assert!(
                errs.iter().any(|e| e.starts_with(&want)),
                "{want} in {errs:?}"
            );
        }
        assert_eq!(errs.len(), 6, "linger.ms passes: {errs:?}");
    }

    #[test]
    fn brokers_topics_and_sizes_are_checked() {
        let errs = errors("kind = \"kafka\"\n");
        assert!(
            errs.iter().any(|e| e.contains("needs `brokers`")),
            "{errs:?}"
        );
        let errs = errors(
            "kind = \"kafka\"\nbrokers = \"127.0.0.1\"\ntopic = \"a b\"\npartitions = 0\nreplication_factor = 0\n[bus.topics_by_type]\nx = \"..\"\n",
        );
        for key in [
            "bus.brokers",
            "bus.topic",
            "bus.partitions",
            "bus.replication_factor",
            "bus.topics_by_type.x",
        ] {
            assert!(errs.iter().any(|e| e.starts_with(key)), "{key} in {errs:?}");
        }
        let errs = errors("kind = \"kafka\"\nbrokers = \"h:1\"\ncompression = \"snappy\"\n");
        assert!(
            errs.iter().any(|e| e.starts_with("bus.compression")),
            "{errs:?}"
        );
    }

    #[test]
    fn delivery_preserving_values_pass() {
        for (key, value) in [
            ("acks", "all"),
            ("acks", "-1"),
            ("enable.idempotence", "true"),
            ("max.in.flight", "5"),
            ("enable.auto.commit", "false"),
            ("linger.ms", "20"),
            ("message.timeout.ms", "30000"),
        ] {
            assert_eq!(setting_problem(key, value), None, "{key} = {value}");
        }
        assert!(setting_problem("max.in.flight.requests.per.connection", "6").is_some());
        assert!(setting_problem("retries", "0").is_some());
    }
}
