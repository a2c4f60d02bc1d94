//! Checks of `[bus]`: the sink has what it needs (a URL of the right scheme, a log folder),
//! names the brokers accept, and sizes and counts the publisher can work with.

use super::Checks;
use crate::config::ByteSize;
use crate::config::diagnostic::KeyPath;
use crate::config::schema::BusKind;

/// Smallest `segment_size`: smaller segments would rotate on nearly every batch.
const MIN_SEGMENT: u64 = 4 * 1024;
/// Smallest `spool_max`: it must hold a few batches.
const MIN_SPOOL: u64 = 64 * 1024;

impl Checks<'_> {
    pub(super) fn bus(&mut self) {
        let bus = &self.raw.bus;
        let path = KeyPath::default().key("bus");
        if bus.kind == BusKind::None {
            return;
        }
        self.bus_limits(&path);
        let (scheme_ok, example): (&[&str], &str) = match bus.kind {
            BusKind::None => return,
            BusKind::Log => {
                if bus.path.as_deref().is_some_and(|p| p.trim().is_empty()) {
                    self.push(
                        path.key("path"),
                        "the event log path is empty",
                        "e.g. path = \"data/events\"",
                    );
                }
                return;
            }
            BusKind::Nats => {
                self.nats_names(&path);
                (&["nats"], "url = \"nats://127.0.0.1:4222\"")
            }
            BusKind::Redis => {
                if bus.key_prefix.trim().is_empty() {
                    self.push(
                        path.key("key_prefix"),
                        "the Redis key prefix is empty",
                        "e.g. key_prefix = \"strangler\"",
                    );
                }
                if bus.maxlen == 0 {
                    self.push(
                        path.key("maxlen"),
                        "must be greater than 0",
                        "e.g. maxlen = 1000000",
                    );
                }
                (&["redis", "rediss"], "url = \"redis://127.0.0.1:6379\"")
            }
            BusKind::Kafka => {
                self.spool_folder(&path);
                self.kafka(&path);
                return;
            }
        };
        self.spool_folder(&path);
        let kind = format!("{:?}", bus.kind).to_lowercase();
        let Some(text) = &bus.url else {
            self.push(
                path.key("kind"),
                format!("bus kind `{kind}` needs a `url`"),
                format!("add {example}"),
            );
            return;
        };
        match url::Url::parse(text) {
            Ok(url)
                if scheme_ok.contains(&url.scheme())
                    && url.host_str().is_some_and(|h| !h.is_empty()) => {}
            Ok(_) | Err(_) => self.push(
                path.key("url"),
                format!("\"{text}\" is not a {} URL", scheme_ok.join("/")),
                format!("write e.g. {example}"),
            ),
        }
    }

    /// The spool folder of a broker sink.
    fn spool_folder(&mut self, path: &KeyPath) {
        if self.raw.bus.spool.trim().is_empty() {
            self.push(
                path.key("spool"),
                "the spool folder is empty",
                "e.g. spool = \"data/spool\" (relative to the config file's folder)",
            );
        }
    }

    /// Sizes, counts and durations every kind uses.
    fn bus_limits(&mut self, path: &KeyPath) {
        let bus = &self.raw.bus;
        if bus.segment_size.bytes() < MIN_SEGMENT {
            self.push(
                path.key("segment_size"),
                format!(
                    "{} is too small (at least {})",
                    bus.segment_size,
                    ByteSize(MIN_SEGMENT)
                ),
                "write e.g. segment_size = \"16MiB\"",
            );
        } else if bus.max_size < bus.segment_size {
            self.push(
                path.key("max_size"),
                format!(
                    "max_size {} cannot hold one segment of {}",
                    bus.max_size, bus.segment_size
                ),
                "make max_size larger than segment_size, e.g. max_size = \"1GiB\"",
            );
        }
        if bus.spool_max.bytes() < MIN_SPOOL {
            self.push(
                path.key("spool_max"),
                format!(
                    "{} is too small (at least {})",
                    bus.spool_max,
                    ByteSize(MIN_SPOOL)
                ),
                "write e.g. spool_max = \"256MiB\"",
            );
        }
        self.positive_duration(&path.key("retention"), bus.retention);
        self.positive_duration(&path.key("fsync_interval"), bus.fsync_interval);
        if bus.channel == 0 {
            self.push(
                path.key("channel"),
                "must be greater than 0",
                "e.g. channel = 8192",
            );
        }
        if bus.batch == 0 {
            self.push(
                path.key("batch"),
                "must be greater than 0",
                "e.g. batch = 256",
            );
        } else if bus.batch > bus.channel && bus.channel > 0 {
            self.push(
                path.key("batch"),
                format!(
                    "a batch of {} cannot be larger than the channel ({})",
                    bus.batch, bus.channel
                ),
                "lower batch or raise channel",
            );
        }
        if bus.kind == BusKind::Log {
            return;
        }
        let log = bus.path.as_deref().map(str::trim);
        if log.is_some_and(|p| p == bus.spool.trim()) {
            self.push(
                path.key("spool"),
                "the spool and the event log cannot share a folder",
                "e.g. spool = \"data/spool\"",
            );
        }
    }

    /// JetStream stream names and subject tokens.
    fn nats_names(&mut self, path: &KeyPath) {
        let bus = &self.raw.bus;
        let bad = |c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\');
        if bus.stream.is_empty() || bus.stream.contains(bad) {
            self.push(
                path.key("stream"),
                format!("\"{}\" is not a JetStream stream name", bus.stream),
                "use letters, digits, `-` and `_`, e.g. stream = \"STRANGLER\"",
            );
        }
        let token_ok = |t: &str| !t.is_empty() && !t.contains(|c: char| bad(c) && c != '.');
        if !bus.subject_prefix.split('.').all(token_ok) {
            self.push(
                path.key("subject_prefix"),
                format!("\"{}\" is not a NATS subject prefix", bus.subject_prefix),
                "use dot-separated words without spaces or wildcards, e.g. subject_prefix = \"strangler\"",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Fsync, OnFull, from_toml_str};

    const HEAD: &str =
        "default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n";

    fn errors(bus: &str) -> Vec<String> {
        match from_toml_str(&format!("{HEAD}[bus]\n{bus}"), "t.toml") {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .0
                .iter()
                .map(|d| format!("{}: {}", d.key, d.message))
                .collect(),
        }
    }

    #[test]
    fn every_key_parses_with_its_default_documented() {
        let text = format!(
            "{HEAD}[bus]\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nsegment_size = \"1MiB\"\nretention = \"1h\"\nmax_size = \"10MiB\"\nfsync = \"always\"\nfsync_interval = \"2s\"\nstream = \"T1\"\nsubject_prefix = \"a.b\"\nkey_prefix = \"k\"\nmaxlen = 5\nchannel = 10\nspool = \"s\"\nspool_max = \"1MiB\"\non_full = \"drop_oldest\"\nbatch = 4\nexchanges = false\n"
        );
        let config = from_toml_str(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let bus = &config.raw().bus;
        assert_eq!(bus.fsync, Fsync::Always);
        assert_eq!(bus.on_full, OnFull::DropOldest);
        assert_eq!((bus.channel, bus.batch, bus.maxlen), (10, 4, 5));
        assert!(!bus.exchanges);
        let defaults = from_toml_str(HEAD, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let bus = &defaults.raw().bus;
        assert_eq!((bus.channel, bus.batch), (8192, 256));
        assert_eq!(bus.on_full, OnFull::DropNewest);
        assert!(bus.exchanges);
    }

    #[test]
    fn limits_are_checked() {
        let errs =
            errors("kind = \"log\"\nchannel = 0\nbatch = 0\nspool_max = 10\nsegment_size = 100\n");
        for key in [
            "bus.channel",
            "bus.batch",
            "bus.spool_max",
            "bus.segment_size",
        ] {
            assert!(errs.iter().any(|e| e.starts_with(key)), "{key} in {errs:?}");
        }
        let errs = errors("kind = \"log\"\nchannel = 4\nbatch = 8\n");
        assert!(errs.iter().any(|e| e.starts_with("bus.batch")), "{errs:?}");
        let errs = errors("kind = \"log\"\nexchanges = \"yes\"\n");
        assert!(errs.iter().any(|e| e.contains("true or false")), "{errs:?}");
    }

    #[test]
    fn nats_names_are_checked() {
        let errs = errors(
            "kind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nstream = \"a.b\"\nsubject_prefix = \"x..y\"\n",
        );
        assert!(errs.iter().any(|e| e.starts_with("bus.stream")), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.starts_with("bus.subject_prefix")),
            "{errs:?}"
        );
        let errs =
            errors("kind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\npath = \"data/spool\"\n");
        assert!(errs.iter().any(|e| e.starts_with("bus.spool")), "{errs:?}");
    }
}
