//! The `routes.toml` schema as serde types: what a user may write, nothing more.
//!
//! These types are the *parsed* form. They are checked by `validate` and compiled by
//! `routing`; the data path never reads them directly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::ByteSize;

mod bus;
mod cluster;
mod events;
mod rollout;

pub use bus::{BusConfig, BusKind, Fsync, KafkaCompression, KafkaFormat, OnFull};
pub use cluster::{ClusterConfig, ClusterKind};
pub use events::{EmitConfig, EmitWhen, ExchangeEventsConfig, RouteEvents, StatusMatch};
pub use rollout::{PromoteConfig, RollbackConfig};

/// The whole `routes.toml` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Upstream that answers requests no route matches (the monolith).
    pub default_upstream: String,
    /// The client-facing listener.
    #[serde(default)]
    pub listen: ListenConfig,
    /// The admin API listener.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Named upstreams the routes point at.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes, in file order; precedence comes from specificity, not order.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Settings shared by every shadowed route (the mismatch corpus).
    #[serde(default)]
    pub shadow: GlobalShadowConfig,
    /// Where events go.
    #[serde(default)]
    pub bus: BusConfig,
    /// Logging defaults (the command line may override them).
    #[serde(default)]
    pub log: LogConfig,
    /// Route modes shared by a fleet of instances (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

/// `[listen]`: the client-facing listener and its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Socket address to bind, e.g. `127.0.0.1:8080`.
    pub address: String,
    /// Serve TLS (HTTP/1.1 and HTTP/2 by ALPN) with this certificate and key.
    pub tls: Option<TlsConfig>,
    /// Maximum open client connections; further connections wait in the accept backlog.
    pub max_connections: usize,
    /// Time from the first byte of a request head to its end (slowloris guard); a client
    /// that is slower is disconnected.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest wait for the next bytes of a request body; a client that stalls longer gets
    /// 408, and the upstream request is aborted.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Connections with no request in flight are closed after this long: HTTP/1.1 once no
    /// byte has moved for it, HTTP/2 once no stream has started or ended for it.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// On SIGTERM/Ctrl-C, in-flight requests get this long to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Largest request head (request line + headers) accepted; larger ones get 431.
    pub max_header_bytes: ByteSize,
    /// Most header fields in a request head; more get 431.
    pub max_headers: usize,
    /// Longest request target (path and query); longer ones get 414.
    pub max_uri_bytes: ByteSize,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams a client may cancel before their answer, per connection; past it, and
    /// once cancelled streams are more than half of the connection's, it is closed (rapid
    /// reset paced slower than h2's own limit on streams reset before they were accepted).
    pub h2_max_cancelled_streams: u64,
    /// Default request body limit for routes that set none.
    pub max_request_body: ByteSize,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:8080".into(),
            tls: None,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            max_header_bytes: ByteSize(64 * 1024),
            max_headers: 100,
            max_uri_bytes: ByteSize(8 * 1024),
            h2_max_concurrent_streams: 100,
            h2_max_cancelled_streams: 100,
            max_request_body: ByteSize(100 * 1024 * 1024),
        }
    }
}

/// `[listen.tls]`: PEM files for rustls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, relative paths resolved against the config file's folder.
    pub cert: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

/// `[admin]`: the admin API listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Socket address of the admin API, e.g. `127.0.0.1:9901`.
    pub address: String,
    /// File holding the bearer token that admin mutations need.
    pub token_file: Option<String>,
    /// Environment variable holding the bearer token.
    pub token_env: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:9901".into(),
            token_file: None,
            token_env: None,
        }
    }
}

/// How the `Host` header reaches an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostHeader {
    /// Keep the client's Host (the monolith sees the public name).
    #[default]
    Preserve,
    /// Use the upstream URL's authority.
    Rewrite,
}

/// `[upstreams.NAME]`: one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL, `http://host:port` (a path prefix is prepended to forwarded paths).
    pub url: String,
    /// Host header policy.
    #[serde(default)]
    pub host_header: HostHeader,
    /// Time allowed to open a TCP connection.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed from sending the request to receiving the response head.
    #[serde(default = "default_response_timeout", with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Pooled idle connections are closed after this long.
    #[serde(default = "default_pool_idle_timeout", with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// Extra attempts to open a connection that failed (before anything is sent; not after a
    /// connect timeout).
    #[serde(default = "default_connect_retries")]
    pub connect_retries: u32,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_response_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_pool_idle_timeout() -> Duration {
    Duration::from_secs(90)
}
fn default_connect_retries() -> u32 {
    1
}

/// Who answers a route's requests; see DESIGN.md "Route modes".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMode {
    /// The monolith answers.
    Legacy,
    /// The monolith answers; a copy goes to the new service and the answers are compared.
    Shadow,
    /// The new service answers `canary.percent` of users; the rest is shadowed.
    Canary,
    /// The new service answers; optional fallback to the monolith.
    Extracted,
    /// The new service answers; the monolith's route is gone.
    Retired,
}

impl RouteMode {
    /// The lower-case name used in routes.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Shadow => "shadow",
            Self::Canary => "canary",
            Self::Extracted => "extracted",
            Self::Retired => "retired",
        }
    }
}

impl std::fmt::Display for RouteMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[routes]]`: one endpoint (or family of endpoints) being migrated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Stable identifier: letters, digits, `-` and `_`.
    pub id: String,
    /// Which requests this route takes.
    #[serde(rename = "match")]
    pub matcher: MatchConfig,
    /// Who answers.
    pub mode: RouteMode,
    /// Upstream name of the monolith side (default: `default_upstream`).
    pub legacy: Option<String>,
    /// Upstream name of the new service; required unless mode is `legacy`.
    pub extracted: Option<String>,
    /// Shadow settings (used in `shadow` and `canary`).
    pub shadow: Option<ShadowConfig>,
    /// Canary settings (used in `canary`).
    pub canary: Option<CanaryConfig>,
    /// Request body limit for this route (default: `listen.max_request_body`).
    pub max_request_body: Option<ByteSize>,
    /// How shadow answers are compared (default: [`DiffConfig::default`]).
    #[serde(default)]
    pub diff: Option<DiffConfig>,
    /// What the route's exchange events carry, or `false` for none (default: published
    /// with the default header list, no bodies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<RouteEvents>,
    /// Domain events derived from the route's exchanges (`[[routes.emit]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emit: Vec<EmitConfig>,
    /// The gate for advancing this route (shown always; applied when `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<PromoteConfig>,
    /// Breaches that send the route back to shadow (with `promote.auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackConfig>,
}

/// `match = { … }`: the request predicate of a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Exact `/a/b`, prefix `/a/*`, or template `/a/{id}/b` (a template may end in `/*`).
    pub path: String,
    /// Allowed methods; empty or absent means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Required Host (without port); absent means any.
    pub host: Option<String>,
    /// Required header values, exact match; header names are case-insensitive.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Which methods a shadow copy may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicy {
    /// Only GET, HEAD and OPTIONS are mirrored.
    #[default]
    Skip,
    /// Writes are mirrored too, marked `X-Strangler-Shadow: 1`.
    Mirror,
}

/// `shadow = { … }`: mirroring settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowConfig {
    /// Share of users (by the route's key) whose requests are mirrored, 0.0 to 1.0.
    #[serde(default = "default_sample")]
    pub sample: f64,
    /// Largest request body that is mirrored (default 1 MiB).
    pub max_body: Option<ByteSize>,
    /// Whether writes are mirrored.
    #[serde(default)]
    pub writes: WritePolicy,
    /// Mirrored requests waiting for a candidate slot at most; beyond, they are skipped.
    #[serde(default = "default_shadow_queue")]
    pub queue: usize,
    /// Candidate calls in flight at most.
    #[serde(default = "default_shadow_concurrency")]
    pub concurrency: usize,
    /// A candidate answer (head and body) taking longer is abandoned and reported.
    #[serde(default = "default_shadow_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Share of mirrored safe requests also sent a second time to legacy, to learn noise.
    #[serde(default = "default_shadow_baseline")]
    pub baseline: f64,
    /// Headers removed from the copy (e.g. `authorization`).
    #[serde(default)]
    pub remove_headers: Vec<String>,
    /// Headers set on the copy, replacing the client's (e.g. a candidate's own credentials).
    #[serde(default)]
    pub set_headers: BTreeMap<String, String>,
}

fn default_sample() -> f64 {
    1.0
}
fn default_shadow_queue() -> usize {
    256
}
fn default_shadow_concurrency() -> usize {
    32
}
fn default_shadow_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_shadow_baseline() -> f64 {
    0.05
}

impl ShadowConfig {
    /// The mirrored body limit in bytes.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body.map_or(1 << 20, ByteSize::bytes)
    }
}

impl Default for ShadowConfig {
    /// What a route in `shadow` or `canary` mode without a `shadow` table gets.
    fn default() -> Self {
        Self {
            sample: default_sample(),
            max_body: None,
            writes: WritePolicy::default(),
            queue: default_shadow_queue(),
            concurrency: default_shadow_concurrency(),
            timeout: default_shadow_timeout(),
            baseline: default_shadow_baseline(),
            remove_headers: Vec::new(),
            set_headers: BTreeMap::new(),
        }
    }
}

/// `[shadow]`: what every shadowed route shares. Read when the proxy starts; a change needs
/// a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalShadowConfig {
    /// Folder of the mismatch corpus: every `regression` is captured there (request, both
    /// answers, differences) as JSON lines per route, for `strangler replay`. Relative to the
    /// config file's folder.
    pub corpus: String,
    /// Most bytes the corpus folder holds; past it, the oldest segment goes (and its captures
    /// are counted as dropped). `0` turns capturing off.
    pub corpus_max: ByteSize,
}

impl Default for GlobalShadowConfig {
    fn default() -> Self {
        Self {
            corpus: "data/diffs".into(),
            corpus_max: ByteSize(64 * 1024 * 1024),
        }
    }
}

/// `diff = { … }`: how the legacy and the candidate answer of a shadowed request are compared.
///
/// Pointers are those `/admin/diffs` reports: `/status`, `/headers/NAME`, `/body` and, for
/// JSON bodies, `/body` followed by an RFC 6901 pointer (`/body/items/0/price`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiffConfig {
    /// Response headers compared, by name; `set-cookie` is compared by cookie names and
    /// attributes, not values.
    pub headers: Vec<String>,
    /// Pointers whose differences do not count, `*` standing for one segment, e.g.
    /// `/body/items/*/updated_at`; a pattern also covers everything under it.
    pub ignore: Vec<String>,
    /// JSON arrays compared as multisets (order does not matter), e.g. `/body/items`.
    pub unordered: Vec<String>,
    /// Two numbers are equal if they differ by at most this much…
    pub absolute_tolerance: f64,
    /// …or by at most this share of the larger magnitude (`1e-9` = nine digits agree).
    pub relative_tolerance: f64,
    /// Two strings that parse as RFC 3339 timestamps are equal if at most this far apart.
    #[serde(with = "humantime_serde")]
    pub timestamp_tolerance: Duration,
    /// Largest decoded body compared by content; beyond it, by length and SHA-256 only.
    pub max_body: ByteSize,
    /// Differences kept per comparison; all of them are still counted.
    pub max_differences: usize,
}

impl Default for DiffConfig {
    fn default() -> Self {
        Self {
            headers: [
                "content-type",
                "location",
                "cache-control",
                "content-disposition",
                "vary",
                "set-cookie",
            ]
            .map(String::from)
            .to_vec(),
            ignore: Vec::new(),
            unordered: Vec::new(),
            absolute_tolerance: 0.0,
            relative_tolerance: 0.0,
            timestamp_tolerance: Duration::ZERO,
            max_body: ByteSize(4 * 1024 * 1024),
            max_differences: 50,
        }
    }
}

/// `canary = { … }`: share of users the new service answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Percentage of users, 0 to 100 (required: a canary table without it means nothing).
    pub percent: f64,
    /// What identifies a user: `ip`, `header:NAME`, `cookie:NAME` or `request_id`.
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_key() -> String {
    "ip".into()
}

impl CanaryConfig {
    /// A canary at `percent` with the default user key (a mode set in the fleet's bucket on a
    /// route whose file has no `canary` table).
    pub fn with_percent(percent: f64) -> Self {
        Self {
            percent,
            key: default_key(),
        }
    }
}

/// `[log]`: logging defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `strangler=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}
