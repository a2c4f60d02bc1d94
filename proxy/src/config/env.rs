//! `STRANGLER__…` environment overrides, e.g. `STRANGLER__LISTEN__ADDRESS=127.0.0.1:9000`.
//!
//! The variables are read by the `config` crate's `Environment` source (prefix `STRANGLER`,
//! separator `__`). That source lowercases every key and knows nothing of arrays, so merged
//! as is it would add an upstream `legacy` beside the file's `Legacy` (upstream and header
//! names are case-sensitive keys here) and turn `routes.0.mode` into a table key that
//! replaces the `routes` array. So the collected keys are resolved against the file's keys
//! first — case-insensitively, numeric segments as array indices — and handed back to
//! `config` as exact-path overrides (`set_override("routes[0].mode", …)`).
//! A list of strings (`match.methods`) is written comma-separated: `GET,POST`.

use std::collections::HashMap;

use config::{Source, Value, ValueKind};

use super::diagnostic::{Diagnostic, KeyPath, Location, Segment, is_bare_key};
use super::shape;

/// Variables starting with this (any case) followed by `__` override the file.
pub(crate) const PREFIX: &str = "STRANGLER";
const SEPARATOR: &str = "__";

/// One override: where it goes, as a `config` path expression, and where it came from.
#[derive(Debug)]
pub(crate) struct Override {
    pub(crate) path: KeyPath,
    pub(crate) expr: String,
    pub(crate) var: String,
    pub(crate) value: Value,
}

/// The overrides `env` holds for a file whose merged value is `file`, and the variables that
/// could not be applied.
pub(crate) fn overrides(
    env: &HashMap<String, String>,
    file: &Value,
) -> (Vec<Override>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let source = config::Environment::with_prefix(PREFIX)
        .prefix_separator(SEPARATOR)
        .separator(SEPARATOR)
        .source(Some(
            env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ));
    let collected = match source.collect() {
        Ok(map) => map,
        Err(e) => {
            diags.push(Diagnostic::new(
                "",
                format!("cannot read the environment: {e}"),
            ));
            return (Vec::new(), diags);
        }
    };

    // `collect` forgets the variable names; recompute its key for each one to find them again.
    let pattern = format!("{PREFIX}{SEPARATOR}").to_lowercase();
    let mut names: Vec<&String> = env.keys().collect();
    names.sort();
    let mut vars: HashMap<String, Vec<&String>> = HashMap::new();
    for var in names {
        if let Some(rest) = var.to_lowercase().strip_prefix(&pattern) {
            vars.entry(rest.replace(SEPARATOR, "."))
                .or_default()
                .push(var);
        }
    }

    let mut keys: Vec<(String, Value)> = collected.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (key, value) in keys {
        let Some(var) = vars.get(&key).and_then(|v| v.first()).map(|v| (*v).clone()) else {
            continue;
        };
        let at = Location::Env { var: var.clone() };
        if let Some(all) = vars.get(&key).filter(|v| v.len() > 1) {
            let names: Vec<&str> = all.iter().map(|v| v.as_str()).collect();
            diags.push(
                Diagnostic::new(
                    key.clone(),
                    format!("set by several variables: {}", names.join(", ")),
                )
                .hint("keep one of them")
                .at(at),
            );
            continue;
        }
        match resolve(&key, file) {
            Ok((path, expr)) => {
                let value = if shape::is_string_list(&path) {
                    split_list(value)
                } else {
                    value
                };
                out.push(Override {
                    path,
                    expr,
                    var,
                    value,
                });
            }
            Err((message, hint)) => diags.push(Diagnostic::new(key, message).hint(hint).at(at)),
        }
    }
    (out, diags)
}

/// Maps a lowercased dotted key onto the file's keys; returns the path and `config` expression.
fn resolve(key: &str, file: &Value) -> Result<(KeyPath, String), (String, String)> {
    let mut path = KeyPath::default();
    let mut current = Some(file);
    for segment in key.split('.') {
        if segment.is_empty() {
            return Err((
                "empty key segment in the variable name".into(),
                "separate keys with exactly two underscores, e.g. STRANGLER__LISTEN__ADDRESS"
                    .into(),
            ));
        }
        match current.map(|v| &v.kind) {
            Some(ValueKind::Array(items)) => {
                let len = items.len();
                let index = segment.parse::<usize>().ok().filter(|i| *i < len).ok_or_else(|| {
                    (
                        format!(
                            "`{path}` has {len} {}; `{segment}` is not one of their indexes",
                            if len == 1 { "entry" } else { "entries" }
                        ),
                        format!("use an index from 0 to {}; the environment can change entries, not add them", len.saturating_sub(1)),
                    )
                })?;
                current = items.get(index);
                path = path.index(index);
            }
            Some(ValueKind::Table(map)) => {
                let name = if map.contains_key(segment) {
                    segment.to_owned()
                } else {
                    let same: Vec<&String> = map
                        .keys()
                        .filter(|k| k.eq_ignore_ascii_case(segment))
                        .collect();
                    match same.as_slice() {
                        [one] => (*one).clone(),
                        _ => segment.to_owned(),
                    }
                };
                current = map.get(&name);
                path = path.key(&name);
            }
            _ => {
                current = None;
                path = path.key(segment);
            }
        }
    }
    let mut expr = String::new();
    for segment in &path.0 {
        match segment {
            Segment::Index(i) => expr.push_str(&format!("[{i}]")),
            Segment::Key(k) if is_bare_key(k) => {
                if !expr.is_empty() {
                    expr.push('.');
                }
                expr.push_str(k);
            }
            Segment::Key(k) => {
                return Err((
                    format!("key `{k}` cannot be set from the environment"),
                    "only keys made of letters, digits, `_` and `-` can be overridden; edit the file".into(),
                ));
            }
        }
    }
    Ok((path, expr))
}

/// `GET, POST` → `["GET", "POST"]`.
fn split_list(value: Value) -> Value {
    let origin = value.origin().map(str::to_owned);
    match value.kind {
        ValueKind::String(s) => {
            let items = s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::new(origin.as_ref(), s))
                .collect::<Vec<_>>();
            Value::new(origin.as_ref(), ValueKind::Array(items))
        }
        kind => Value::new(origin.as_ref(), kind),
    }
}
