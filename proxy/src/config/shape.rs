//! The shape of `routes.toml`: which keys exist, which are required, what type each holds.
//!
//! serde stops at the first error and says little about where; this walk runs before it
//! over the merged (file + environment) value and reports *every* unknown key (with a "did
//! you mean"), missing required key and ill-typed value. It removes what it reported, so that
//! serde then sees a value it can read and the semantic checks still run.
//!
//! It must match `schema.rs`; a test serializes a fully populated [`RawConfig`] and walks it.
//!
//! [`RawConfig`]: super::RawConfig

use config::{Value, ValueKind};

use super::diagnostic::{Diagnostic, KeyPath, suggest};
use super::locate::Locator;
use super::units::ByteSize;

mod tables;

pub(crate) use tables::Shape;
use tables::{Field, ROOT, ROOT_FIELDS};

/// The shape expected at `path`, if the path can exist.
pub(crate) fn shape_at(path: &KeyPath) -> Option<&'static Shape> {
    use super::diagnostic::Segment;
    let mut shape = &ROOT;
    for segment in &path.0 {
        shape = match (shape, segment) {
            (Shape::Table(fields), Segment::Key(k)) => fields.iter().find(|f| f.name == k)?.shape,
            (Shape::Map(inner), Segment::Key(_)) | (Shape::List(inner), Segment::Index(_)) => inner,
            _ => return None,
        };
    }
    Some(shape)
}

/// Whether the value at `path` is a list of strings (an environment value is split at commas).
pub(crate) fn is_string_list(path: &KeyPath) -> bool {
    matches!(shape_at(path), Some(Shape::List(Shape::Str)))
}

/// Checks `root` against the schema, removing what is wrong, and reports each problem.
/// Also returns the keys of stand-ins put where nothing was reported (a required key taken to
/// be misspelled), so that later checks do not report on them either.
pub(crate) fn check(root: &mut Value, locator: &Locator) -> (Vec<Diagnostic>, Vec<KeyPath>) {
    let mut walk = Walk {
        locator,
        diags: Vec::new(),
        quiet: Vec::new(),
        misplaced: Vec::new(),
    };
    walk.value(root, &ROOT, &KeyPath::default());
    (walk.diags, walk.quiet)
}

// === impl Walk ===

struct Walk<'a> {
    locator: &'a Locator,
    diags: Vec<Diagnostic>,
    /// Stand-ins for keys reported under another name.
    quiet: Vec<KeyPath>,
    /// Top-level keys found inside a table (written after a `[table]` header).
    misplaced: Vec<&'static str>,
}

impl Walk<'_> {
    fn report(&mut self, path: &KeyPath, on_key: bool, diag: Diagnostic) {
        let location = self.locator.locate(path, on_key);
        self.diags.push(Diagnostic { location, ..diag });
    }

    /// Checks one value; `false` means "remove it" (it was reported).
    fn value(&mut self, value: &mut Value, shape: &Shape, path: &KeyPath) -> bool {
        let from_env = self.locator.is_from_env(path);
        if let Shape::Either(first, second) = shape {
            if let Some(chosen) = [first, second]
                .into_iter()
                .find(|s| fits(s, &value.kind, from_env))
            {
                return self.value(value, chosen, path);
            }
        }
        let problem = match (shape, &mut value.kind) {
            (Shape::Table(fields), ValueKind::Table(map)) => {
                self.table(map, fields, path);
                return true;
            }
            (Shape::Map(inner), ValueKind::Table(map)) => {
                let mut keys: Vec<String> = map.keys().cloned().collect();
                keys.sort();
                for key in keys {
                    let keep = map
                        .get_mut(&key)
                        .is_some_and(|v| self.value(v, inner, &path.key(&key)));
                    if !keep {
                        map.remove(&key);
                    }
                }
                return true;
            }
            (Shape::List(inner), ValueKind::Array(items)) => {
                let mut index = 0;
                items.retain_mut(|v| {
                    index += 1;
                    self.value(v, inner, &path.index(index - 1))
                });
                return true;
            }
            (Shape::Str, ValueKind::String(_)) => None,
            (Shape::Int { max }, kind) => match integer(kind, from_env) {
                Some(n) if n < 0 => Some(("a non-negative whole number".to_owned(), None)),
                Some(n) if n > i128::from(*max) => {
                    Some((format!("a whole number up to {max}"), None))
                }
                Some(_) => None,
                None => Some(("a whole number".to_owned(), None)),
            },
            (Shape::Float, ValueKind::Float(_) | ValueKind::I64(_) | ValueKind::U64(_)) => None,
            (Shape::Float, ValueKind::String(s)) if from_env && s.trim().parse::<f64>().is_ok() => {
                None
            }
            (Shape::Float, _) => Some(("a number".to_owned(), None)),
            (Shape::Bool, ValueKind::Boolean(_)) => None,
            (Shape::Bool, ValueKind::String(s))
                if from_env && matches!(s.trim(), "true" | "false") =>
            {
                None
            }
            (Shape::Bool, _) => Some(("true or false".to_owned(), None)),
            (Shape::Enum(names), ValueKind::String(s)) => {
                if names.contains(&s.as_str()) {
                    None
                } else {
                    let diag = Diagnostic::new(
                        path.to_string(),
                        format!("unknown {} \"{s}\"", path.last_key()),
                    )
                    .hint(format!("use one of {}", names.join(", ")));
                    self.report(path, false, diag);
                    return false;
                }
            }
            (Shape::Duration, ValueKind::String(s)) => humantime::parse_duration(s.trim())
                .err()
                .map(|_| ("a duration".to_owned(), None)),
            (Shape::Size, ValueKind::String(s)) => ByteSize::parse(s)
                .err()
                .map(|e| (format!("a size ({e})"), None)),
            (Shape::Size, ValueKind::I64(n)) if *n < 0 => {
                Some(("a non-negative size".to_owned(), None))
            }
            (Shape::Size, ValueKind::I64(_) | ValueKind::U64(_)) => None,
            _ => Some((expected(shape), None)),
        };
        let Some((expected, hint)) = problem else {
            return true;
        };
        let found = describe(&value.kind);
        let hint = hint.unwrap_or_else(|| type_hint(shape, path));
        let diag = Diagnostic::new(
            path.to_string(),
            format!("expected {expected}, found {found}"),
        )
        .hint(hint);
        self.report(path, false, diag);
        false
    }

    fn table(&mut self, map: &mut config::Map<String, Value>, fields: &[Field], path: &KeyPath) {
        let mut keys: Vec<String> = map.keys().cloned().collect();
        keys.sort();
        // Required keys that an unknown key was taken for a misspelling of.
        let mut suggested = Vec::new();
        for key in keys {
            let child = path.key(&key);
            let keep = match fields.iter().find(|f| f.name == key) {
                Some(field) => map
                    .get_mut(&key)
                    .is_some_and(|v| self.value(v, field.shape, &child)),
                None => {
                    suggested.extend(self.unknown_key(&key, fields, &child));
                    false
                }
            };
            if !keep {
                map.remove(&key);
            }
        }
        for field in fields {
            let Some(example) = field.required else {
                continue;
            };
            if map.contains_key(field.name) {
                continue;
            }
            let child = path.key(field.name);
            let key = child.to_string();
            let elsewhere = path.0.is_empty() && self.misplaced.contains(&field.name);
            if !suggested.contains(&field.name)
                && !elsewhere
                && !self.diags.iter().any(|d| d.key == key)
            {
                let mut hint = format!("add `{example}`");
                if path.0.is_empty() {
                    hint.push_str(" at the top of the file, before any [table]");
                }
                let diag = Diagnostic::new(key, format!("missing required key `{}`", field.name));
                self.report(&child, false, diag.hint(hint));
            } else {
                self.quiet.push(child);
            }
            // Reported: a stand-in lets serde and the other checks go on.
            map.insert(field.name.to_owned(), placeholder(field.shape));
        }
    }

    /// Reports an unknown key; returns the known key it is probably a misspelling of.
    fn unknown_key(&mut self, key: &str, fields: &[Field], path: &KeyPath) -> Option<&'static str> {
        let names = fields.iter().map(|f| f.name);
        let close = suggest(key, names.clone());
        let hint = if let Some(close) = close {
            format!("did you mean `{close}`?")
        } else if let Some(top) = ROOT_FIELDS
            .iter()
            .find(|f| f.name == key && path.0.len() > 1)
        {
            self.misplaced.push(top.name);
            format!("`{key}` is a top-level key: move it above the first [table] header")
        } else {
            format!("known keys here: {}", names.collect::<Vec<_>>().join(", "))
        };
        let diag = Diagnostic::new(path.to_string(), format!("unknown key `{key}`")).hint(hint);
        self.report(path, true, diag);
        close
    }
}

/// A value of `shape` standing in for a missing or removed required one (already reported;
/// checks of keys under a reported key are not reported again).
fn placeholder(shape: &Shape) -> Value {
    let kind = match shape {
        Shape::Table(fields) => ValueKind::Table(
            fields
                .iter()
                .filter(|f| f.required.is_some())
                .map(|f| (f.name.to_owned(), placeholder(f.shape)))
                .collect(),
        ),
        Shape::Map(_) => ValueKind::Table(config::Map::new()),
        Shape::List(_) => ValueKind::Array(Vec::new()),
        Shape::Str => ValueKind::String(String::new()),
        Shape::Int { .. } | Shape::Size => ValueKind::I64(1),
        Shape::Float => ValueKind::Float(0.0),
        Shape::Bool => ValueKind::Boolean(false),
        Shape::Either(first, _) => return placeholder(first),
        Shape::Enum(names) => {
            ValueKind::String(names.first().copied().unwrap_or_default().to_owned())
        }
        Shape::Duration => ValueKind::String("1s".to_owned()),
    };
    Value::new(None, kind)
}

/// Whether a value of `kind` is of `shape`'s kind (its details are checked after).
fn fits(shape: &Shape, kind: &ValueKind, from_env: bool) -> bool {
    match shape {
        Shape::Table(_) | Shape::Map(_) => matches!(kind, ValueKind::Table(_)),
        Shape::List(_) => matches!(kind, ValueKind::Array(_)),
        Shape::Str | Shape::Enum(_) | Shape::Duration => matches!(kind, ValueKind::String(_)),
        Shape::Int { .. } => integer(kind, from_env).is_some(),
        Shape::Float => matches!(
            kind,
            ValueKind::I64(_) | ValueKind::U64(_) | ValueKind::I128(_) | ValueKind::Float(_)
        ),
        Shape::Size => matches!(
            kind,
            ValueKind::I64(_) | ValueKind::U64(_) | ValueKind::I128(_) | ValueKind::String(_)
        ),
        Shape::Bool => match kind {
            ValueKind::Boolean(_) => true,
            ValueKind::String(s) => from_env && matches!(s.trim(), "true" | "false"),
            _ => false,
        },
        Shape::Either(first, second) => fits(first, kind, from_env) || fits(second, kind, from_env),
    }
}

/// An integer, or (from the environment, where everything is text) a string holding one.
fn integer(kind: &ValueKind, from_env: bool) -> Option<i128> {
    match kind {
        ValueKind::I64(n) => Some(i128::from(*n)),
        ValueKind::U64(n) => Some(i128::from(*n)),
        ValueKind::I128(n) => Some(*n),
        ValueKind::String(s) if from_env => s.trim().parse().ok(),
        _ => None,
    }
}

fn duration_hint() -> String {
    "write a duration such as \"500ms\", \"10s\" or \"2m\"".to_owned()
}

fn expected(shape: &Shape) -> String {
    match shape {
        Shape::Table(_) | Shape::Map(_) => "a table".into(),
        Shape::List(Shape::Table(_)) => "an array of tables".into(),
        Shape::List(_) => "an array".into(),
        Shape::Str => "a string".into(),
        Shape::Int { .. } => "a whole number".into(),
        Shape::Float => "a number".into(),
        Shape::Bool => "true or false".into(),
        Shape::Either(first, second) => format!("{} or {}", expected(first), expected(second)),
        Shape::Enum(names) => format!("one of {}", names.join(", ")),
        Shape::Duration => "a duration string".into(),
        Shape::Size => "a size".into(),
    }
}

fn type_hint(shape: &Shape, path: &KeyPath) -> String {
    let name = path.last_key();
    match shape {
        Shape::Table(_) | Shape::Map(_) => {
            format!("write a table, e.g. `{name} = {{ … }}` or a [{path}] section")
        }
        Shape::List(Shape::Table(_)) => {
            format!("write each entry as a [[{name}]] table")
        }
        Shape::List(_) => format!("write a list, e.g. `{name} = [\"…\"]`"),
        Shape::Str => "put the value in double quotes".into(),
        Shape::Int { .. } => "write a whole number without quotes".into(),
        Shape::Float => "write a number without quotes".into(),
        Shape::Bool => "write true or false, without quotes".into(),
        Shape::Either(first, second) => {
            format!("{}; or {}", type_hint(first, path), type_hint(second, path))
        }
        Shape::Enum(names) => format!("use one of {}", names.join(", ")),
        Shape::Duration => duration_hint(),
        Shape::Size => "write a byte count or a string such as \"64KiB\" or \"10MiB\"".into(),
    }
}

fn describe(kind: &ValueKind) -> String {
    match kind {
        ValueKind::Nil => "nothing".into(),
        ValueKind::Boolean(b) => format!("the boolean {b}"),
        ValueKind::I64(n) => format!("the integer {n}"),
        ValueKind::I128(n) => format!("the integer {n}"),
        ValueKind::U64(n) => format!("the integer {n}"),
        ValueKind::U128(n) => format!("the integer {n}"),
        ValueKind::Float(f) => format!("the number {f}"),
        ValueKind::String(s) => format!("the string {s:?}"),
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "an array".into(),
    }
}
