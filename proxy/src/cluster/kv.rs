//! The fleet's JetStream key-value bucket: opening (or creating) it, and the codec of what
//! it holds. One key per route, `modes.<route id>`, whose value is a [`ModeRecord`] in JSON
//! and whose KV revision is the route's version. The leader lease and per-instance evidence
//! live in buckets of their own beside it ([`Bucket::aux`]), whose `max_age` expires them.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use serde::{Deserialize, Serialize};

use crate::config::{ClusterConfig, RouteMode};
use crate::events::exchange::Cause;
use crate::rollout::Stage;

/// Every call to the server is bounded by this, so a half-open connection never hangs a
/// flip or a start.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(3);

/// Values kept per key: a route's recent history stays readable (`nats kv history`).
const HISTORY: i64 = 16;

/// Prefix of the keys holding route modes.
const MODES: &str = "modes.";

/// The KV key of `route`'s mode. Route ids are letters, digits, `-` and `_` (checked by
/// `config`), all valid in a key.
pub fn route_key(route: &str) -> String {
    format!("{MODES}{route}")
}

/// The route id a key names, if it is a mode key.
pub fn key_route(key: &str) -> Option<&str> {
    key.strip_prefix(MODES).filter(|id| !id.is_empty())
}

/// The subject filter matching every mode key, for watches.
pub(crate) fn modes_filter() -> String {
    format!("{MODES}>")
}

/// A route's mode as stored in the bucket, with who set it (the value of a mode key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeRecord {
    /// The mode.
    pub mode: RouteMode,
    /// The canary percentage (mode `canary` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Who: `seed`, `cli`, `admin`, `rollout`, an admin token's name.
    pub by: String,
    /// The instance that wrote it.
    pub instance: String,
    /// Why, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, RFC 3339.
    pub at: String,
    /// The correlation id of the automatic decision behind it, if any, so every instance's
    /// route-changed event ties to the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
}

impl ModeRecord {
    /// A record of `stage` written now.
    pub fn new(stage: Stage, by: &str, instance: &str, reason: Option<String>) -> Self {
        Self {
            mode: stage.mode,
            percent: stage.percent.filter(|_| stage.mode == RouteMode::Canary),
            by: by.to_owned(),
            instance: instance.to_owned(),
            reason,
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            correlation: None,
        }
    }

    /// Who made the change and why, for the route-changed event of every instance.
    pub fn cause(&self) -> Cause {
        Cause {
            by: format!("{} on {}", self.by, self.instance),
            reason: self.reason.clone(),
            correlation: self.correlation.clone(),
        }
    }

    /// The stage it records.
    pub fn stage(&self) -> Stage {
        Stage {
            mode: self.mode,
            percent: self.percent,
        }
    }

    /// The bytes stored in the bucket.
    pub fn encode(&self) -> bytes::Bytes {
        // Serializing plain strings, numbers and an enum cannot fail; an empty value would
        // be refused by `decode` rather than applied.
        serde_json::to_vec(self).unwrap_or_default().into()
    }

    /// Reads a stored value; an error says what is wrong so a hand-edited key can be fixed.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let record: Self = serde_json::from_slice(bytes).map_err(|e| {
            format!("not a strangler mode record ({e}); write it with `strangler flip`")
        })?;
        if record.mode == RouteMode::Canary {
            match record.percent {
                Some(p) if (0.0..=100.0).contains(&p) => {}
                other => {
                    return Err(format!(
                        "a canary record needs a percent from 0 to 100 (got {other:?})"
                    ));
                }
            }
        }
        Ok(record)
    }
}

/// Why the bucket could not be reached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cluster: {0}")]
pub struct Unreachable(pub String);

/// A connection to the fleet's bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The client, to tell whether the connection is up.
    pub client: async_nats::Client,
    /// The bucket.
    pub store: kv::Store,
}

impl Bucket {
    /// Connects to `settings.url` and opens the bucket, creating it (with history) when it
    /// does not exist yet. Bounded by [`TIMEOUT`] per step.
    pub async fn open(settings: &ClusterConfig, instance: &str) -> Result<Self, Unreachable> {
        let url = &settings.url;
        let client = async_nats::ConnectOptions::new()
            .name(format!("strangler {instance}"))
            .connection_timeout(TIMEOUT)
            .request_timeout(Some(TIMEOUT))
            // Come back within a second of the server: flips wait for it.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100u64.saturating_mul(attempts as u64).min(1_000))
            })
            .connect(url)
            .await
            .map_err(|e| Unreachable(format!("cannot connect to NATS at {url}: {e}")))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(TIMEOUT)
            .build(client.clone());
        let bucket = &settings.bucket;
        let store = match bounded(js.get_key_value(bucket.as_str())).await {
            Ok(Ok(store)) => store,
            Ok(Err(_)) => {
                // Created as a stream rather than with `create_key_value`, whose account
                // query does not parse the answer of the NATS 2.9 that Debian ships.
                let config =
                    bucket_stream(bucket, "strangler route modes, one key per route", HISTORY);
                match bounded(js.get_or_create_stream(config)).await {
                    // Created now, or by another instance meanwhile.
                    Ok(Ok(_)) => match bounded(js.get_key_value(bucket.as_str())).await {
                        Ok(Ok(store)) => store,
                        Ok(Err(e)) => {
                            return Err(Unreachable(format!(
                                "cannot open the KV bucket `{bucket}` on {url}: {e}"
                            )));
                        }
                        Err(e) => return Err(e),
                    },
                    Ok(Err(create)) => {
                        return Err(Unreachable(format!(
                            "cannot create the KV bucket `{bucket}` on {url}: {create}; is JetStream enabled (nats-server -js)?"
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(Self { client, store })
    }

    /// Opens (or creates) the bucket `name` beside the modes' for state that must not
    /// outlive `max_age`: one value per key, each gone `max_age` after it was last written
    /// (NATS 2.9 has no per-key TTL; a bucket-wide age does the same for keys that are
    /// rewritten while alive: the leader lease, per-instance evidence).
    pub async fn aux(
        &self,
        name: &str,
        max_age: Duration,
        description: &str,
    ) -> Result<kv::Store, Unreachable> {
        let js = jetstream::ContextBuilder::new()
            .timeout(TIMEOUT)
            .build(self.client.clone());
        if let Ok(Ok(store)) = bounded(js.get_key_value(name)).await {
            return Ok(store);
        }
        let config = stream::Config {
            max_age,
            // JetStream wants the duplicate window within max_age.
            duplicate_window: max_age,
            ..bucket_stream(name, description, 1)
        };
        match bounded(js.get_or_create_stream(config)).await? {
            Ok(_) => bounded(js.get_key_value(name))
                .await?
                .map_err(|e| Unreachable(format!("cannot open the KV bucket `{name}`: {e}"))),
            Err(e) => Err(Unreachable(format!(
                "cannot create the KV bucket `{name}`: {e}; is JetStream enabled (nats-server -js)?"
            ))),
        }
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// The stream behind KV bucket `name`, with the settings `create_key_value` would give it
/// (created as streams: see the note on NATS 2.9 in [`Bucket::open`]), keeping
/// `history` values per key.
fn bucket_stream(name: &str, description: &str, history: i64) -> stream::Config {
    stream::Config {
        name: format!("KV_{name}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: history,
        max_bytes: -1,
        max_message_size: -1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// `future` bounded by [`TIMEOUT`].
pub(crate) async fn bounded<T>(future: impl Future<Output = T>) -> Result<T, Unreachable> {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .map_err(|_| Unreachable(format!("NATS did not answer within {TIMEOUT:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(route_key("thumbnail"), "modes.thumbnail");
        assert_eq!(key_route("modes.thumb_nail-2"), Some("thumb_nail-2"));
        assert_eq!(key_route("modes."), None);
        assert_eq!(key_route("lease.leader"), None);
    }

    #[test]
    fn records_round_trip() {
        let record = ModeRecord::new(Stage::canary(12.5), "admin", "edge-1", Some("ok".into()));
        let back = ModeRecord::decode(&record.encode()).expect("decodes");
        assert_eq!(back, record);
        assert_eq!(back.stage(), Stage::canary(12.5));
        let cause = back.cause();
        assert_eq!(
            (cause.by.as_str(), cause.reason.as_deref()),
            ("admin on edge-1", Some("ok"))
        );
        let decided = ModeRecord {
            correlation: Some("decision-1".into()),
            ..record
        };
        let back = ModeRecord::decode(&decided.encode()).expect("decodes");
        assert_eq!(back.cause().correlation.as_deref(), Some("decision-1"));
        let shadow = ModeRecord::new(
            Stage {
                mode: RouteMode::Shadow,
                percent: Some(5.0),
            },
            "seed",
            "edge-1",
            None,
        );
        assert_eq!(shadow.percent, None, "a percent only goes with canary");
        let text = String::from_utf8(shadow.encode().to_vec()).expect("utf-8");
        assert!(
            text.contains("\"mode\":\"shadow\"") && !text.contains("percent"),
            "{text}"
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let err = ModeRecord::decode(b"canary").unwrap_err();
        assert!(err.contains("strangler flip"), "{err}");
        let err = ModeRecord::decode(
            br#"{"mode":"canary","percent":140,"by":"x","instance":"i","at":"t"}"#,
        )
        .unwrap_err();
        assert!(err.contains("0 to 100"), "{err}");
        let err = ModeRecord::decode(br#"{"mode":"sideways","by":"x","instance":"i","at":"t"}"#)
            .unwrap_err();
        assert!(err.contains("sideways"), "{err}");
    }
}
