//! Semantic checks of a deserialized [`RawConfig`]: what serde cannot see.
//!
//! Every check runs and every problem is collected; nothing stops at the first. The checks
//! only read, except for documented defaults filled in at the start (a `log` bus without a
//! `path` gets `data/events`). Overlapping routes are `routing`'s to find, not ours.

mod bus;
mod cluster;
mod diff;
mod events;
mod kafka;
mod limits;
mod route;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::diagnostic::{Diagnostic, KeyPath, suggest};
use super::locate::Locator;
use super::schema::{BusKind, RawConfig, UpstreamConfig};
use super::units::ByteSize;

/// Where a `log` bus writes when the file names no `path`.
pub(crate) const DEFAULT_BUS_PATH: &str = "data/events";

/// Smallest non-zero `shadow.corpus_max`: a corpus smaller than this would rotate away most
/// captures as soon as they are written.
const MIN_CORPUS: u64 = 64 * 1024;

/// Fills documented defaults into `raw`, then checks it; relative file paths are resolved
/// against `base_dir`.
pub(crate) fn check(raw: &mut RawConfig, base_dir: &Path, locator: &Locator) -> Vec<Diagnostic> {
    if raw.bus.kind == BusKind::Log && raw.bus.path.is_none() {
        raw.bus.path = Some(DEFAULT_BUS_PATH.to_owned());
    }
    let mut checks = Checks {
        raw,
        base_dir,
        locator,
        diags: Vec::new(),
    };
    checks.all();
    checks.diags
}

/// The state of one validation run.
struct Checks<'a> {
    raw: &'a RawConfig,
    base_dir: &'a Path,
    locator: &'a Locator,
    diags: Vec<Diagnostic>,
}

impl Checks<'_> {
    fn push(&mut self, key: impl ToString, message: impl Into<String>, hint: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(key.to_string(), message).hint(hint));
    }

    fn all(&mut self) {
        let raw = self.raw;
        let root = KeyPath::default();
        self.upstream_ref(
            &root.key("default_upstream"),
            &raw.default_upstream,
            "default",
        );
        for (name, upstream) in &raw.upstreams {
            self.upstream(&root.key("upstreams").key(name), upstream);
        }
        self.listen();
        let admin = root.key("admin");
        let admin_addr = self.socket_addr(&admin.key("address"), &raw.admin.address);
        let listen_addr = raw.listen.address.parse::<SocketAddr>().ok();
        if let (Some(a), Some(l)) = (admin_addr, listen_addr) {
            if a == l && a.port() != 0 {
                self.push(
                    admin.key("address"),
                    format!("the admin API and the listener both use {a}"),
                    "give [admin] its own port, e.g. 127.0.0.1:9901",
                );
            }
        }
        self.shadow();
        self.bus();
        self.log();
        self.cluster();
        self.routes();
    }

    /// `name` must be a defined upstream; `role` says which one it is for messages.
    fn upstream_ref(&mut self, key: &KeyPath, name: &str, role: &str) {
        if self.raw.upstreams.contains_key(name) {
            return;
        }
        let names: Vec<&str> = self.raw.upstreams.keys().map(String::as_str).collect();
        let hint = match suggest(name, names.iter().copied()) {
            Some(close) => format!("did you mean \"{close}\"?"),
            None if names.is_empty() => {
                format!("define it: [upstreams.{name}] with url = \"http://host:port\"")
            }
            None => format!(
                "use one of {}, or define [upstreams.{name}]",
                names.join(", ")
            ),
        };
        self.push(
            key,
            format!("{role} upstream \"{name}\" is not defined in [upstreams]"),
            hint,
        );
    }

    fn upstream(&mut self, path: &KeyPath, upstream: &UpstreamConfig) {
        let key = path.key("url");
        let example = "write e.g. url = \"http://127.0.0.1:8081\"";
        match url::Url::parse(&upstream.url) {
            Err(e) => self.push(
                &key,
                format!("\"{}\" is not a URL ({e})", upstream.url),
                example,
            ),
            Ok(url) => {
                match url.scheme() {
                    "http" => {}
                    "https" => self.push(
                        &key,
                        "https upstreams are not supported yet",
                        "use http:// to reach the upstream (terminate TLS in front of it if needed)",
                    ),
                    other => self.push(&key, format!("unsupported scheme `{other}`"), example),
                }
                if url.host_str().is_none_or(str::is_empty) {
                    self.push(&key, "the URL has no host", example);
                } else if url.port_or_known_default().is_none() {
                    self.push(&key, "the URL has no port", example);
                }
                if url.query().is_some() {
                    self.push(
                        &key,
                        "an upstream URL cannot have a query (`?…`)",
                        "remove it",
                    );
                }
                if url.fragment().is_some() {
                    self.push(
                        &key,
                        "an upstream URL cannot have a fragment (`#…`)",
                        "remove it",
                    );
                }
            }
        }
        self.positive_duration(&path.key("connect_timeout"), upstream.connect_timeout);
        self.positive_duration(&path.key("response_timeout"), upstream.response_timeout);
        self.positive_duration(&path.key("pool_idle_timeout"), upstream.pool_idle_timeout);
    }

    fn listen(&mut self) {
        let listen = &self.raw.listen;
        let path = KeyPath::default().key("listen");
        self.socket_addr(&path.key("address"), &listen.address);
        if let Some(tls) = &listen.tls {
            self.file_exists(&path.key("tls").key("cert"), &tls.cert, "certificate");
            self.file_exists(&path.key("tls").key("key"), &tls.key, "private key");
        }
        if listen.max_connections == 0 {
            self.push(
                path.key("max_connections"),
                "must be greater than 0",
                "e.g. max_connections = 10000",
            );
        }
        self.positive_duration(&path.key("header_read_timeout"), listen.header_read_timeout);
        self.positive_duration(&path.key("idle_timeout"), listen.idle_timeout);
        self.positive_size(&path.key("max_header_bytes"), listen.max_header_bytes);
        self.positive_size(&path.key("max_request_body"), listen.max_request_body);
        self.listen_limits(&path);
    }

    fn socket_addr(&mut self, key: &KeyPath, text: &str) -> Option<SocketAddr> {
        let parsed = text.parse::<SocketAddr>().ok();
        if parsed.is_none() {
            self.push(
                key,
                format!("\"{text}\" is not a socket address"),
                "write IP:port, e.g. 127.0.0.1:8080 or [::]:8080 (host names are not resolved)",
            );
        }
        parsed
    }

    fn file_exists(&mut self, key: &KeyPath, file: &str, what: &str) {
        let resolved = self.base_dir.join(file);
        if !resolved.is_file() {
            self.push(
                key,
                format!(
                    "{what} file \"{file}\" not found (looked at {})",
                    resolved.display()
                ),
                "relative paths are resolved against the folder of the config file",
            );
        }
    }

    fn positive_duration(&mut self, key: &KeyPath, value: Duration) {
        if value.is_zero() {
            self.push(
                key,
                "must be greater than 0",
                "write a duration such as \"500ms\" or \"10s\"",
            );
        }
    }

    fn positive_size(&mut self, key: &KeyPath, value: ByteSize) {
        if value.bytes() == 0 {
            self.push(
                key,
                "must be greater than 0",
                "write a size such as \"64KiB\" or \"10MiB\"",
            );
        }
    }

    /// `[shadow]`: the corpus folder must be named; its cap must hold at least one capture.
    fn shadow(&mut self) {
        let shadow = &self.raw.shadow;
        let path = KeyPath::default().key("shadow");
        if shadow.corpus.trim().is_empty() {
            self.push(
                path.key("corpus"),
                "the corpus folder is empty",
                "e.g. corpus = \"data/diffs\" (relative to the config file's folder)",
            );
        }
        let max = shadow.corpus_max.bytes();
        if max != 0 && max < MIN_CORPUS {
            self.push(
                path.key("corpus_max"),
                format!(
                    "{} is too small to hold a capture (at least {})",
                    shadow.corpus_max,
                    ByteSize(MIN_CORPUS)
                ),
                "write e.g. corpus_max = \"64MiB\", or 0 to capture nothing",
            );
        }
    }

    fn log(&mut self) {
        let level = &self.raw.log.level;
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
            self.push(
                KeyPath::default().key("log").key("level"),
                format!("\"{level}\" is not a log filter ({e})"),
                "use e.g. info, debug, or strangler=debug,info",
            );
        }
    }
}
