//! [`DiffRules`]: a route's `diff = { … }` table, checked and compiled once per reload.

use std::time::Duration;

use http::HeaderName;

use super::pointer::{Pattern, Step};
use crate::config::DiffConfig;

/// What a pattern is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Differences at or under it do not count.
    Ignore,
    /// The JSON array there is compared as a multiset.
    Unordered,
}

/// A compiled pattern and what it is for.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) pattern: Pattern,
    pub(super) purpose: Purpose,
}

/// The compiled comparison rules of one route: which headers count, which pointers are
/// ignored or unordered, the tolerances, and the size limits. Build it once (per reload) with
/// [`DiffRules::new`]; [`DiffRules::default`] is what a route without a `diff` table gets.
#[derive(Debug, Clone)]
pub struct DiffRules {
    /// Headers compared, lower-case, without duplicates.
    pub(super) headers: Vec<HeaderName>,
    /// `ignore` and `unordered` patterns, in that order.
    pub(super) rules: Vec<Rule>,
    /// Numbers at most this far apart are equal.
    pub(super) absolute_tolerance: f64,
    /// Numbers at most this share of the larger magnitude apart are equal.
    pub(super) relative_tolerance: f64,
    /// RFC 3339 timestamps at most this far apart are equal.
    pub(super) timestamp_tolerance: Duration,
    /// Largest decoded body compared by content.
    pub(super) max_body: usize,
    /// Differences kept per comparison.
    pub(super) max_differences: usize,
}

/// Most differences a comparison may keep (`max_differences`): they are held in memory and
/// shown by `/admin/diffs`.
const MAX_DIFFERENCES_LIMIT: usize = 10_000;

/// One thing wrong in a `diff` table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}{}: {message}; {hint}", index.map(|i| format!("[{i}]")).unwrap_or_default())]
pub struct RuleProblem {
    /// The key in the `diff` table, e.g. `ignore`.
    pub field: &'static str,
    /// The position in a list key such as `ignore`.
    pub index: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

/// Everything wrong in a `diff` table (never empty).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid diff rules: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct RulesError(pub Vec<RuleProblem>);

impl Default for DiffRules {
    fn default() -> Self {
        Self {
            headers: default_headers(),
            rules: Vec::new(),
            absolute_tolerance: 0.0,
            relative_tolerance: 0.0,
            timestamp_tolerance: Duration::ZERO,
            max_body: 4 * 1024 * 1024,
            max_differences: 50,
        }
    }
}

fn default_headers() -> Vec<HeaderName> {
    DiffConfig::default()
        .headers
        .iter()
        .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .collect()
}

impl DiffRules {
    /// Checks and compiles a `diff` table, reporting every problem at once.
    pub fn new(config: &DiffConfig) -> Result<Self, RulesError> {
        let mut problems = Vec::new();
        let mut problem = |field, index, message: String, hint: &str| {
            problems.push(RuleProblem {
                field,
                index,
                message,
                hint: hint.to_owned(),
            });
        };
        let mut headers: Vec<HeaderName> = Vec::new();
        for (i, name) in config.headers.iter().enumerate() {
            match HeaderName::from_bytes(name.trim().as_bytes()) {
                Ok(name) if !headers.contains(&name) => headers.push(name),
                Ok(_) => {}
                Err(_) => problem(
                    "headers",
                    Some(i),
                    format!("\"{name}\" is not a valid header name"),
                    "use letters, digits and `-`, e.g. \"content-type\"",
                ),
            }
        }
        let mut rules = Vec::new();
        let lists = [
            ("ignore", &config.ignore, Purpose::Ignore),
            ("unordered", &config.unordered, Purpose::Unordered),
        ];
        for (field, patterns, purpose) in lists {
            for (i, text) in patterns.iter().enumerate() {
                match Pattern::parse(text).and_then(|p| check_scope(p, text, purpose)) {
                    Ok(pattern) => rules.push(Rule { pattern, purpose }),
                    Err(message) => problem(
                        field,
                        Some(i),
                        message,
                        "write a pointer as /admin/diffs shows it, e.g. \"/body/items/*/updated_at\" or \"/headers/etag\"",
                    ),
                }
            }
        }
        let tolerances = [
            ("absolute_tolerance", config.absolute_tolerance),
            ("relative_tolerance", config.relative_tolerance),
        ];
        for (field, value) in tolerances {
            if !value.is_finite() || value < 0.0 {
                problem(
                    field,
                    None,
                    format!("{value} is not a tolerance"),
                    "use a number of 0 or more, e.g. 0.001",
                );
            }
        }
        let max_body = usize::try_from(config.max_body.bytes()).unwrap_or(usize::MAX);
        if max_body == 0 {
            problem(
                "max_body",
                None,
                "must be greater than 0".into(),
                "write a size such as \"4MiB\"",
            );
        }
        if !(1..=MAX_DIFFERENCES_LIMIT).contains(&config.max_differences) {
            problem(
                "max_differences",
                None,
                format!("{} is out of range", config.max_differences),
                "use 1 to 10000, e.g. max_differences = 50",
            );
        }
        if !problems.is_empty() {
            return Err(RulesError(problems));
        }
        Ok(Self {
            headers,
            rules,
            absolute_tolerance: config.absolute_tolerance,
            relative_tolerance: config.relative_tolerance,
            timestamp_tolerance: config.timestamp_tolerance,
            max_body,
            max_differences: config.max_differences,
        })
    }

    /// Whether an `ignore` pattern covers `pointer` (for pointers outside a JSON body; the
    /// JSON walk tracks patterns as it descends instead).
    pub(super) fn ignores(&self, pointer: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.purpose == Purpose::Ignore && r.pattern.covers(pointer))
    }
}

/// Patterns must point where differences can be: `/status`, `/headers/NAME` or `/body…`;
/// `unordered` only into a JSON body.
fn check_scope(pattern: Pattern, text: &str, purpose: Purpose) -> Result<Pattern, String> {
    let steps = &pattern.steps;
    let key = |i: usize| match steps.get(i) {
        Some(Step::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let ok = match (purpose, key(0)) {
        (Purpose::Ignore, Some("status")) => steps.len() == 1,
        (Purpose::Ignore, Some("headers")) => {
            steps.len() == 2
                && match &steps[1] {
                    Step::Any => true,
                    Step::Key(name) => {
                        HeaderName::from_bytes(name.as_bytes()).is_ok_and(|h| h.as_str() == name)
                    }
                }
        }
        (Purpose::Ignore, Some("body")) => true,
        (Purpose::Unordered, Some("body")) => true,
        _ => false,
    };
    if ok {
        Ok(pattern)
    } else if purpose == Purpose::Unordered {
        Err(format!(
            "\"{text}\" does not point into the body; unordered arrays are JSON arrays under /body"
        ))
    } else {
        Err(format!(
            "\"{text}\" is not a pointer a difference can have: /status, /headers/NAME (lower-case) or /body…"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_compiles_to_default_rules() {
        let rules = DiffRules::new(&DiffConfig::default()).unwrap();
        assert_eq!(rules.headers, DiffRules::default().headers);
        assert_eq!(rules.max_body, DiffRules::default().max_body);
        assert_eq!(rules.headers.len(), 6);
    }

    #[test]
    fn every_problem_is_reported() {
        let config = DiffConfig {
            headers: vec!["content-type".into(), "bad header".into()],
            ignore: vec![
                "/body/ok".into(),
                "body".into(),
                "/headers/Etag".into(),
                "/status/x".into(),
                "/elsewhere".into(),
            ],
            unordered: vec!["/headers/vary".into(), "/body/a*".into()],
            absolute_tolerance: -1.0,
            relative_tolerance: f64::NAN,
            max_body: crate::config::ByteSize(0),
            max_differences: 0,
            ..DiffConfig::default()
        };
        let err = DiffRules::new(&config).unwrap_err();
        let keys: Vec<String> = err
            .0
            .iter()
            .map(|p| format!("{}{:?}", p.field, p.index))
            .collect();
        assert_eq!(
            keys,
            [
                "headersSome(1)",
                "ignoreSome(1)",
                "ignoreSome(2)",
                "ignoreSome(3)",
                "ignoreSome(4)",
                "unorderedSome(0)",
                "unorderedSome(1)",
                "absolute_toleranceNone",
                "relative_toleranceNone",
                "max_bodyNone",
                "max_differencesNone",
            ]
        );
        assert!(err.to_string().contains("ignore[1]"), "{err}");
    }

    #[test]
    fn ignores_by_pattern() {
        let config = DiffConfig {
            ignore: vec!["/headers/*".into(), "/body/meta".into()],
            ..DiffConfig::default()
        };
        let rules = DiffRules::new(&config).unwrap();
        assert!(rules.ignores("/headers/etag"));
        assert!(rules.ignores("/body/meta/at"));
        assert!(!rules.ignores("/body"));
        assert!(!rules.ignores("/status"));
    }
}
