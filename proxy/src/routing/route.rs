//! One compiled route: what the data path needs, precomputed from a `[[routes]]` entry, and
//! the request predicate (path, methods, host, headers) in a form that matches without
//! allocating.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::pattern::{Kind, PathPattern, RequestPath};
use crate::config::{
    CanaryConfig, Diagnostic, DiffConfig, MatchConfig, PromoteConfig, RollbackConfig, RouteConfig,
    RouteMode, ShadowConfig,
};

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route's id from `routes.toml`; names it in logs, events and the admin API.
    pub id: Arc<str>,
    /// Who answers.
    pub mode: RouteMode,
    /// Upstream name of the monolith side (the file's `legacy`, else `default_upstream`).
    pub legacy: Arc<str>,
    /// Upstream name of the new service, if any.
    pub extracted: Option<Arc<str>>,
    /// `match.path` as written: the path template in logs and events.
    pub pattern: Arc<str>,
    /// Shadow settings; filled with the defaults (sample 1.0) when the mode mirrors
    /// (`shadow`, `canary`) and the file gave none.
    pub shadow: Option<ShadowConfig>,
    /// Canary settings as written (its `key` also drives shadow sampling).
    pub canary: Option<CanaryConfig>,
    /// Request body limit in bytes; `None` means the listener's default.
    pub max_request_body: Option<u64>,
    /// How shadow answers are compared, as written (`None`: the defaults).
    pub diff: Option<DiffConfig>,
    /// The promotion gate, as written.
    pub promote: Option<PromoteConfig>,
    /// The rollback thresholds, as written.
    pub rollback: Option<RollbackConfig>,
    /// Position of the route in the file's `[[routes]]`, for diagnostics.
    pub(crate) index: usize,
    /// The predicate, compiled.
    pub(crate) matcher: Matcher,
    /// Where the route sits in the precedence order.
    pub(crate) specificity: Specificity,
    /// The predicate as written, for display.
    source: MatchConfig,
}

/// A route's rank; greater is more specific. Fields compare in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Specificity {
    /// The path's positions, compared one by one (literal > param > end > `*`).
    pub(crate) path: Box<[Kind]>,
    /// Whether the route requires a host.
    pub(crate) host: bool,
    /// Whether the route restricts methods.
    pub(crate) methods: bool,
    /// How many header conditions the route has.
    pub(crate) headers: usize,
}

/// The request predicate, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    /// The path pattern.
    pub(crate) path: PathPattern,
    /// Allowed methods.
    pub(crate) methods: Methods,
    /// Required host, lower-cased, without a trailing dot.
    pub(crate) host: Option<Box<str>>,
    /// Required header values.
    pub(crate) headers: Box<[(HeaderName, HeaderValue)]>,
}

/// The first reason a request does not match a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The path pattern does not match.
    Path,
    /// The method is not in `methods`.
    Method,
    /// The host differs.
    Host,
    /// The header at this index of `headers` is missing or has another value.
    Header(usize),
}

/// A set of methods: a bitset of the standard ones plus any extension methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Methods {
    /// Bit `i` set: `STANDARD[i]` is allowed.
    bits: u16,
    /// Extension methods allowed (rare).
    extensions: Box<[Method]>,
}

/// The methods with a bit in [`Methods`].
const STANDARD: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

impl Methods {
    /// Whether no method is listed, i.e. all are allowed.
    pub(crate) fn is_any(&self) -> bool {
        self.bits == 0 && self.extensions.is_empty()
    }

    /// Whether `method` is allowed.
    pub(crate) fn allows(&self, method: &Method) -> bool {
        if self.is_any() {
            return true;
        }
        // Compare `Method`s, not names: a standard method compares as an enum tag.
        match STANDARD.iter().position(|m| m == method) {
            Some(i) => self.bits & (1 << i) != 0,
            None => self.extensions.contains(method),
        }
    }

    /// A method both sets allow, if any.
    pub(crate) fn common(&self, other: &Self) -> Option<String> {
        match (self.is_any(), other.is_any()) {
            (true, true) => Some("GET".to_owned()),
            (true, false) => other.names().next(),
            (false, true) => self.names().next(),
            (false, false) => self.names().find(|m| other.names().any(|n| n == *m)),
        }
    }

    /// The allowed methods by name (empty when all are allowed).
    pub(crate) fn names(&self) -> impl Iterator<Item = String> + '_ {
        STANDARD
            .iter()
            .enumerate()
            .filter(|(i, _)| self.bits & (1 << i) != 0)
            .map(|(_, m)| m.as_str().to_owned())
            .chain(self.extensions.iter().map(|m| m.as_str().to_owned()))
    }
}

fn standard_bit(method: &str) -> Option<u16> {
    STANDARD
        .iter()
        .position(|m| m.as_str() == method)
        .map(|i| 1 << i)
}

/// The name in a Host header, to compare case-insensitively: without a `:port`, without a
/// trailing dot, and an IPv6 literal without its brackets (`[::1]:8080` → `::1`), which is
/// how `match.host` writes it.
pub(crate) fn host_name(host: &str) -> &str {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(addr, _)| addr),
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    name.strip_suffix('.').unwrap_or(name)
}

impl Matcher {
    /// The first reason the request does not match, or `None` if it does. With
    /// `first_known`, a literal first path segment is already known to match.
    pub(crate) fn check(
        &self,
        method: &Method,
        host: Option<&str>,
        path: &RequestPath<'_>,
        first_known: bool,
        headers: &HeaderMap,
    ) -> Option<Miss> {
        if !self.path.matches(path, first_known) {
            return Some(Miss::Path);
        }
        if !self.methods.allows(method) {
            return Some(Miss::Method);
        }
        if let Some(wanted) = &self.host {
            let matches = host.is_some_and(|h| host_name(h).eq_ignore_ascii_case(wanted));
            if !matches {
                return Some(Miss::Host);
            }
        }
        self.headers
            .iter()
            .position(|(name, wanted)| {
                // A repeated field is a list, which never equals one value; this also keeps
                // two routes that want different values of one header truly disjoint.
                let mut values = headers.get_all(name).iter();
                !(values.next() == Some(wanted) && values.next().is_none())
            })
            .map(Miss::Header)
    }
}

impl Route {
    /// Compiles the `index`-th `[[routes]]` entry; every problem becomes a diagnostic.
    pub(crate) fn compile(
        index: usize,
        raw: &RouteConfig,
        default_upstream: &Arc<str>,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let at = |field: &str| format!("routes[{index}].match.{field}");

        let path = PathPattern::parse(&raw.matcher.path).map_err(|e| {
            Diagnostic::new(at("path"), e.to_string())
                .hint("write an exact path `/a/b`, a prefix `/a/*` or a template `/a/{id}`")
        });

        let mut bits = 0u16;
        let mut extensions = Vec::new();
        for name in &raw.matcher.methods {
            let upper = name.to_ascii_uppercase();
            if let Some(bit) = standard_bit(&upper) {
                bits |= bit;
            } else {
                match Method::from_bytes(upper.as_bytes()) {
                    Ok(m) => extensions.push(m),
                    Err(_) => diags.push(
                        Diagnostic::new(at("methods"), format!("`{name}` is not an HTTP method"))
                            .hint("use method names such as GET, POST, PUT, DELETE"),
                    ),
                }
            }
        }
        extensions.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        extensions.dedup();

        let host = raw.matcher.host.as_deref().map(|h| {
            let h = h.strip_suffix('.').unwrap_or(h);
            let h = h
                .strip_prefix('[')
                .and_then(|v6| v6.strip_suffix(']'))
                .unwrap_or(h);
            h.to_ascii_lowercase().into_boxed_str()
        });

        let mut headers = Vec::new();
        for (name, value) in &raw.matcher.headers {
            let parsed_name = HeaderName::from_bytes(name.as_bytes());
            let parsed_value = HeaderValue::from_str(value);
            match (parsed_name, parsed_value) {
                (Ok(n), Ok(v)) => headers.push((n, v)),
                (Err(_), _) => diags.push(
                    Diagnostic::new(
                        at("headers"),
                        format!("`{name}` is not a valid header name"),
                    )
                    .hint("header names are tokens such as `x-tenant`"),
                ),
                (_, Err(_)) => diags.push(
                    Diagnostic::new(
                        at("headers"),
                        format!("the value of header `{name}` is not a valid header value"),
                    )
                    .hint("use visible ASCII characters"),
                ),
            }
        }
        // Two spellings of one name (`X-A`, `x-a`) with different values can never match.
        headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()).then_with(|| a.1.cmp(&b.1)));
        headers.dedup();
        for pair in headers.windows(2) {
            let [(a, _), (b, _)] = pair else { continue };
            if a == b {
                diags.push(
                    Diagnostic::new(
                        at("headers"),
                        format!("header `{a}` is required with two different values"),
                    )
                    .hint("header names are case-insensitive; keep one of them"),
                );
            }
        }

        let path = match path {
            Ok(p) if diags.is_empty() => p,
            Ok(_) => return Err(diags),
            Err(d) => {
                diags.insert(0, d);
                return Err(diags);
            }
        };

        let methods = Methods {
            bits,
            extensions: extensions.into(),
        };
        let specificity = Specificity {
            path: path.kinds(),
            host: host.is_some(),
            methods: !methods.is_any(),
            headers: headers.len(),
        };
        let shadow = match (&raw.shadow, raw.mode) {
            (None, RouteMode::Shadow | RouteMode::Canary) => Some(ShadowConfig::default()),
            (shadow, _) => shadow.clone(),
        };
        Ok(Route {
            id: raw.id.as_str().into(),
            mode: raw.mode,
            legacy: raw
                .legacy
                .as_deref()
                .map_or_else(|| default_upstream.clone(), Arc::from),
            extracted: raw.extracted.as_deref().map(Arc::from),
            pattern: raw.matcher.path.as_str().into(),
            shadow,
            canary: raw.canary.clone(),
            max_request_body: raw.max_request_body.map(|b| b.bytes()),
            diff: raw.diff.clone(),
            promote: raw.promote.clone(),
            rollback: raw.rollback.clone(),
            index,
            matcher: Matcher {
                path,
                methods,
                host,
                headers: headers.into(),
            },
            specificity,
            source: raw.matcher.clone(),
        })
    }

    /// The route's `match` as written in `routes.toml`.
    pub fn match_config(&self) -> &MatchConfig {
        &self.source
    }

    /// The route's position among the file's `[[routes]]` (0-based).
    pub fn file_index(&self) -> usize {
        self.index
    }

    /// A one-line summary of the predicate: `GET,POST /api/{id} host=h x-a=1`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let methods: Vec<String> = self.matcher.methods.names().collect();
        if methods.is_empty() {
            out.push('*');
        } else {
            out.push_str(&methods.join(","));
        }
        out.push(' ');
        out.push_str(&self.pattern);
        if let Some(host) = &self.source.host {
            out.push_str(" host=");
            out.push_str(host);
        }
        for (name, value) in &self.source.headers {
            out.push(' ');
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        out
    }
}
