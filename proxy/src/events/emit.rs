//! Domain events derived from traffic: a route's `[[routes.emit]]` rules.
//!
//! A rule names an event type, which exchanges publish it (`when`: methods and statuses) and
//! where each field of its data comes from: a JSON pointer into the request or response body
//! (`request:/sku`, `response:/id`), a path parameter (`param:sku`) or a header
//! (`header:x-request-id`, `response_header:location`), optionally only one segment of the
//! header's path (`response_header:location:/orders/{id}`, see `capture`: the id of an order
//! a form POST answered with only a redirect). Rules are compiled once per
//! configuration; validation compiles them too, so every mistake is a config error with its
//! line, never a surprise at run time.
//!
//! At run time a field that is not there (pointer absent, body not JSON, body too large) is a
//! counted skip of that rule, logged at debug: never a panic, never a half-filled event.
//! Tallies survive reloads that leave the rule unchanged.

mod capture;
mod extract;
mod pointer;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderName, Method, StatusCode};
use serde::Serialize;

use crate::config::{EmitConfig, StatusMatch};

pub use capture::Capture;
pub use extract::{BodySeen, Extractor, Seen};
pub use pointer::{Pointer, PointerError};

/// Most bytes of a body (raw, and again decoded) that rules read; a larger body makes the
/// rules that need it skip with [`Skip::BodyUnavailable`].
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Headers no rule may copy into an event (they are always redacted).
pub const SENSITIVE: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

/// Where a field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A JSON pointer into the request body.
    Request(Pointer),
    /// A JSON pointer into the response body (decoded if compressed).
    Response(Pointer),
    /// A path parameter of the route's template, percent-decoded.
    Param(Box<str>),
    /// A request header (repeated fields joined by `, `).
    Header(HeaderName),
    /// A response header.
    ResponseHeader(HeaderName),
}

/// One field of a rule's data.
#[derive(Debug)]
pub struct Field {
    /// Its name in the event's `data`.
    name: Box<str>,
    /// Where its value comes from.
    source: Source,
    /// For a header source: the one path segment kept of its value.
    capture: Option<Capture>,
}

/// Why a rule published nothing for an exchange it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A pointer, parameter or header named by the rule was absent.
    MissingField,
    /// A body the rule reads is not JSON.
    NotJson,
    /// A body the rule reads was too large, cut short, or in an unknown encoding.
    BodyUnavailable,
}

impl Skip {
    /// The snake_case name in logs and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingField => "missing_field",
            Self::NotJson => "not_json",
            Self::BodyUnavailable => "body_unavailable",
        }
    }
}

/// Which exchanges a rule fires on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct When {
    /// Empty: any.
    methods: Box<[Method]>,
    /// Never empty (the default is `2xx`).
    status: Box<[Status]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Code(u16),
    /// The hundreds digit: `2` for `2xx`.
    Class(u16),
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// The event type.
    kind: Arc<str>,
    when: When,
    /// The fields, in the config's (sorted) order.
    fields: Box<[Field]>,
    /// The rule as written, to keep its tallies across a reload that leaves it alone.
    config: EmitConfig,
    tally: Arc<Tally>,
}

/// What a rule did since the proxy started.
#[derive(Debug, Default)]
struct Tally {
    emitted: AtomicU64,
    missing_field: AtomicU64,
    not_json: AtomicU64,
    body_unavailable: AtomicU64,
}

/// A route's rules.
#[derive(Debug, Default)]
pub struct Rules {
    rules: Box<[Rule]>,
}

/// One problem in a rule, for validation to place at its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// Which rule (index in the route's `emit`).
    pub rule: usize,
    /// Which key of it.
    pub at: RuleKey,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// A key inside one `[[routes.emit]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKey {
    /// `type`.
    Type,
    /// `when.methods[i]`.
    Method(usize),
    /// `when.status[i]`.
    Status(usize),
    /// `data.NAME`.
    Data(String),
}

/// A rule's tallies as the admin API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    /// The route.
    pub route: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events published.
    pub emitted: u64,
    /// Matching exchanges that published nothing, by reason.
    pub skipped: SkipCounts,
}

/// Skips by reason.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SkipCounts {
    /// A named field was absent.
    pub missing_field: u64,
    /// A body was not JSON.
    pub not_json: u64,
    /// A body was too large, cut short or undecodable.
    pub body_unavailable: u64,
}

// === impl Rules ===

impl Rules {
    /// Compiles a route's rules; `params` are the parameter names of its path template.
    /// Tallies of rules unchanged since `previous` carry over.
    pub fn compile(
        configs: &[EmitConfig],
        params: &[&str],
        previous: Option<&Rules>,
    ) -> Result<Self, Vec<RuleProblem>> {
        let mut problems = Vec::new();
        let mut rules = Vec::with_capacity(configs.len());
        for (i, config) in configs.iter().enumerate() {
            let mut report = |at: RuleKey, message: String, hint: &str| {
                problems.push(RuleProblem {
                    rule: i,
                    at,
                    message,
                    hint: hint.to_owned(),
                });
            };
            if let Err((message, hint)) = check_type(&config.kind) {
                report(RuleKey::Type, message, hint);
            }
            let mut methods = Vec::new();
            for (j, name) in config.when.methods.iter().enumerate() {
                match parse_method(name) {
                    Ok(m) => methods.push(m),
                    Err((message, hint)) => report(RuleKey::Method(j), message, hint),
                }
            }
            let mut status = Vec::new();
            for (j, entry) in config.when.status.iter().enumerate() {
                match parse_status(entry) {
                    Ok(s) => status.push(s),
                    Err((message, hint)) => report(RuleKey::Status(j), message, hint),
                }
            }
            if status.is_empty() {
                status.push(Status::Class(2));
            }
            let mut fields = Vec::with_capacity(config.data.len());
            for (name, text) in &config.data {
                let checked = check_field_name(name).and_then(|()| parse_source(text, params));
                match checked {
                    Ok((source, capture)) => fields.push(Field {
                        name: name.as_str().into(),
                        source,
                        capture,
                    }),
                    Err((message, hint)) => report(RuleKey::Data(name.clone()), message, hint),
                }
            }
            let tally = previous
                .and_then(|p| p.rules.iter().find(|r| r.config == *config))
                .map_or_else(Arc::default, |r| r.tally.clone());
            rules.push(Rule {
                kind: config.kind.as_str().into(),
                when: When {
                    methods: methods.into(),
                    status: status.into(),
                },
                fields: fields.into(),
                config: config.clone(),
                tally,
            });
        }
        if problems.is_empty() {
            Ok(Self {
                rules: rules.into(),
            })
        } else {
            Err(problems)
        }
    }

    /// Whether the route has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Rule> {
        self.rules.iter()
    }

    /// Tallies of every rule of `route`.
    pub fn views(&self, route: &str) -> Vec<RuleView> {
        self.rules.iter().map(|r| r.view(route)).collect()
    }
}

// === impl Rule ===

impl Rule {
    /// The event type.
    pub fn kind(&self) -> &Arc<str> {
        &self.kind
    }

    /// Whether `method` can fire this rule (the status is known later).
    pub fn wants_method(&self, method: &Method) -> bool {
        self.when.methods.is_empty() || self.when.methods.contains(method)
    }

    /// Whether an exchange with this method and status fires this rule.
    pub fn fires(&self, method: &Method, status: StatusCode) -> bool {
        let code = status.as_u16();
        self.wants_method(method)
            && self.when.status.iter().any(|s| match *s {
                Status::Code(c) => c == code,
                Status::Class(class) => code / 100 == class,
            })
    }

    /// Where the rule's fields come from.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.fields.iter().map(|f| &f.source)
    }

    /// The event data for one exchange, counting the outcome.
    pub fn extract(&self, from: &Extractor<'_>) -> Result<serde_json::Value, Skip> {
        let result = from.fields(&self.fields);
        let counter = match &result {
            Ok(_) => &self.tally.emitted,
            Err(Skip::MissingField) => &self.tally.missing_field,
            Err(Skip::NotJson) => &self.tally.not_json,
            Err(Skip::BodyUnavailable) => &self.tally.body_unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result.map(serde_json::Value::Object)
    }

    fn view(&self, route: &str) -> RuleView {
        let t = &self.tally;
        RuleView {
            route: route.to_owned(),
            kind: self.kind.to_string(),
            emitted: t.emitted.load(Ordering::Relaxed),
            skipped: SkipCounts {
                missing_field: t.missing_field.load(Ordering::Relaxed),
                not_json: t.not_json.load(Ordering::Relaxed),
                body_unavailable: t.body_unavailable.load(Ordering::Relaxed),
            },
        }
    }
}

/// A body with its `Content-Encoding` undone (gzip, deflate, br), if it decodes within
/// [`BODY_LIMIT`].
pub fn decode_body(headers: &http::HeaderMap, body: &[u8]) -> Option<Vec<u8>> {
    extract::decode(headers, body).ok()
}

// === parsing ===

/// The `{name}` parameters of a path template such as `/api/products/{sku}`.
pub fn template_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

type Problem = (String, &'static str);

/// Event types are dot-separated names (`shop.order.placed`); `strangler.` is the proxy's.
fn check_type(kind: &str) -> Result<(), Problem> {
    let hint = "write a dot-separated name such as \"shop.order.placed\"";
    let names_ok = kind.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if kind.is_empty() || !names_ok || !kind.contains('.') || kind.len() > 200 {
        return Err((format!("\"{kind}\" is not an event type"), hint));
    }
    if kind.starts_with("strangler.") {
        return Err((
            format!("event type \"{kind}\" is reserved for the proxy's own events"),
            "use your own prefix, e.g. \"shop.order.placed\"",
        ));
    }
    Ok(())
}

fn parse_method(name: &str) -> Result<Method, Problem> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err((
            format!("\"{name}\" is not an HTTP method"),
            "use e.g. POST, PUT",
        ));
    }
    if name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err((
            format!("method \"{name}\" must be upper-case"),
            "write methods in upper case, e.g. POST",
        ));
    }
    Method::from_bytes(name.as_bytes())
        .map_err(|_| (format!("\"{name}\" is not an HTTP method"), "use e.g. POST"))
}

fn parse_status(entry: &StatusMatch) -> Result<Status, Problem> {
    let hint = "use a code from 100 to 599 (201) or a class (\"2xx\")";
    match entry {
        StatusMatch::Code(code) if (100..=599).contains(code) => Ok(Status::Code(*code)),
        StatusMatch::Code(code) => Err((format!("{code} is not an HTTP status"), hint)),
        StatusMatch::Class(text) => {
            let lower = text.trim().to_ascii_lowercase();
            let bytes = lower.as_bytes();
            match bytes {
                [d @ b'1'..=b'5', b'x', b'x'] => Ok(Status::Class(u16::from(d - b'0'))),
                _ => match lower.parse::<u16>() {
                    Ok(code) if (100..=599).contains(&code) => Ok(Status::Code(code)),
                    _ => Err((format!("\"{text}\" is not a status or status class"), hint)),
                },
            }
        }
    }
}

fn check_field_name(name: &str) -> Result<(), Problem> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err((
            format!("field name \"{name}\" may contain only letters, digits, `_` and `-`"),
            "e.g. order_id",
        ))
    }
}

/// Parses `request:/ptr`, `response:/ptr`, `param:NAME`, `header:NAME`, `response_header:NAME`;
/// a header may be followed by `:TEMPLATE` (`response_header:location:/orders/{id}`) to keep
/// one segment of its value.
pub fn parse_source(
    text: &str,
    params: &[&str],
) -> Result<(Source, Option<Capture>), (String, &'static str)> {
    let sources = "use request:/pointer, response:/pointer, param:NAME, header:NAME[:/path/{part}] or response_header:NAME[:/path/{part}]";
    let Some((kind, rest)) = text.split_once(':') else {
        return Err((format!("\"{text}\" names no source"), sources));
    };
    let pointer = |rest: &str| {
        Pointer::parse(rest).map_err(|e| {
            (
                format!("\"{rest}\" is not a JSON pointer: {e}"),
                "write an RFC 6901 pointer such as /order/id (`~1` for `/`, `~0` for `~`)",
            )
        })
    };
    // A header name has no `:`, so what follows one is the template of the part kept.
    let header_part = |rest: &str| -> Result<(HeaderName, Option<Capture>), Problem> {
        match rest.split_once(':') {
            Some((name, template)) => Ok((header(name)?, Some(Capture::parse(template)?))),
            None => Ok((header(rest)?, None)),
        }
    };
    match kind {
        "request" => pointer(rest).map(|p| (Source::Request(p), None)),
        "response" => pointer(rest).map(|p| (Source::Response(p), None)),
        "param" if params.contains(&rest) => Ok((Source::Param(rest.into()), None)),
        "param" if params.is_empty() => Err((
            format!("the route's path has no parameters, so `param:{rest}` is never there"),
            "name a {parameter} of `match.path`, e.g. /api/products/{sku} and param:sku",
        )),
        "param" => Err((
            format!(
                "the route's path has no parameter `{{{rest}}}` (it has {})",
                params
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "name a {parameter} of `match.path`",
        )),
        "header" => header_part(rest).map(|(n, c)| (Source::Header(n), c)),
        "response_header" => header_part(rest).map(|(n, c)| (Source::ResponseHeader(n), c)),
        other => Err((format!("unknown source `{other}:`"), sources)),
    }
}

fn header(name: &str) -> Result<HeaderName, Problem> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        (
            format!("`{name}` is not a header name"),
            "e.g. x-request-id",
        )
    })?;
    if SENSITIVE.contains(&parsed.as_str()) {
        return Err((
            format!("header `{name}` is never copied into events (always redacted)"),
            "name another header",
        ));
    }
    Ok(parsed)
}
