//! Key path → file:line:column (or the environment variable that set it).
//!
//! The `config` crate keeps no positions, so the text is parsed a second time with
//! `toml_edit`, whose `Document` keeps spans, and every key and value's position is recorded
//! once under its [`KeyPath`]. A key that is not in the file (a missing required key) is
//! placed at the closest enclosing key that is, such as its `[[routes]]` header.

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{Item, Table, Value};

use super::diagnostic::{Diagnostic, KeyPath, Location};

/// Positions of a key and of its value, as (line, column) from 1.
#[derive(Debug, Clone, Copy, Default)]
struct Spot {
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
}

/// Turns key paths into locations for one loaded configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Locator {
    /// The file's name in messages; `None` when there is no text (a config built in memory).
    name: Option<String>,
    /// Every key path found in the text.
    spots: HashMap<KeyPath, Spot>,
    /// Paths set by environment overrides, with the variable that set each.
    env: Vec<(KeyPath, String)>,
}

impl Locator {
    /// A locator for a configuration that has no text: it locates nothing.
    pub(crate) fn detached() -> Self {
        Self::default()
    }

    /// Parses `text`, recording positions, or returns the TOML syntax error, located.
    pub(crate) fn parse(name: &str, text: &str) -> Result<Self, Diagnostic> {
        let lines = LineIndex::new(text);
        let doc = match toml_edit::Document::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let (line, column) = lines.position(offset);
                let message = e.message().trim().replace('\n', "; ");
                return Err(Diagnostic::new("", format!("invalid TOML: {message}"))
                    .hint("fix the syntax at this position; nothing else was checked")
                    .at(Location::File {
                        path: name.to_owned(),
                        line,
                        column,
                    }));
            }
        };
        let mut locator = Self {
            name: Some(name.to_owned()),
            ..Self::default()
        };
        let mut walk = Walk {
            lines: &lines,
            spots: &mut locator.spots,
        };
        walk.table(&KeyPath::default(), doc.as_table());
        Ok(locator)
    }

    /// Records that `path` was set by the environment variable `var`.
    pub(crate) fn add_env(&mut self, path: KeyPath, var: String) {
        self.env.push((path, var));
    }

    /// Whether the value at `path` came from the environment.
    pub(crate) fn is_from_env(&self, path: &KeyPath) -> bool {
        self.env.iter().any(|(p, _)| path.starts_with(p))
    }

    /// Where `path` is: the key itself when `prefer_key`, otherwise its value.
    pub(crate) fn locate(&self, path: &KeyPath, prefer_key: bool) -> Option<Location> {
        if let Some((_, var)) = self.env.iter().rev().find(|(p, _)| path.starts_with(p)) {
            return Some(Location::Env { var: var.clone() });
        }
        let name = self.name.as_ref()?;
        if !path.0.is_empty() && !self.spots.contains_key(path) {
            // A table the environment created, e.g. a new upstream.
            if let Some((_, var)) = self.env.iter().find(|(p, _)| p.starts_with(path)) {
                return Some(Location::Env { var: var.clone() });
            }
        }
        let mut current = Some(path.clone());
        let mut exact = true;
        while let Some(p) = current {
            if let Some(spot) = self.spots.get(&p) {
                // The key itself if asked; else its value; a missing key is shown at the
                // closest enclosing table's header (its value span) or key.
                let pick = if exact && prefer_key {
                    spot.key.or(spot.value)
                } else {
                    spot.value.or(spot.key)
                };
                if let Some((line, column)) = pick {
                    return Some(Location::File {
                        path: name.clone(),
                        line,
                        column,
                    });
                }
            }
            exact = false;
            current = p.parent();
        }
        Some(Location::File {
            path: name.clone(),
            line: 1,
            column: 1,
        })
    }

    /// Fills in the location of a diagnostic that has none, from its key (value preferred).
    pub(crate) fn fill(&self, mut diag: Diagnostic) -> Diagnostic {
        if diag.location.is_none() {
            diag.location = self.locate(&KeyPath::parse(&diag.key), false);
        }
        diag
    }

    /// A short "where" for use inside a message, e.g. `routes.toml:12`.
    pub(crate) fn describe(&self, path: &KeyPath) -> Option<String> {
        match self.locate(path, true)? {
            Location::File { path, line, .. } => Some(format!("{path}:{line}")),
            Location::Env { var } => Some(format!("env {var}")),
        }
    }
}

// === impl Walk ===

/// Records the position of every key and value under a table.
struct Walk<'a> {
    lines: &'a LineIndex<'a>,
    spots: &'a mut HashMap<KeyPath, Spot>,
}

impl Walk<'_> {
    fn record(&mut self, path: KeyPath, key: Option<Range<usize>>, value: Option<Range<usize>>) {
        let key = key.map(|s| self.lines.position(s.start));
        let value = value.map(|s| self.lines.position(s.start));
        let spot = self.spots.entry(path).or_default();
        spot.key = spot.key.or(key);
        spot.value = spot.value.or(value);
    }

    fn table(&mut self, path: &KeyPath, table: &Table) {
        for (name, item) in table.iter() {
            let child = path.key(name);
            let key_span = table.key(name).and_then(toml_edit::Key::span);
            self.item(child, key_span, item);
        }
    }

    fn item(&mut self, path: KeyPath, key_span: Option<Range<usize>>, item: &Item) {
        self.record(path.clone(), key_span, item.span());
        match item {
            Item::None => {}
            Item::Value(value) => self.value(&path, value),
            Item::Table(table) => self.table(&path, table),
            Item::ArrayOfTables(array) => {
                for (i, table) in array.iter().enumerate() {
                    let element = path.index(i);
                    self.record(element.clone(), None, table.span());
                    self.table(&element, table);
                }
            }
        }
    }

    fn value(&mut self, path: &KeyPath, value: &Value) {
        match value {
            Value::InlineTable(table) => {
                for (name, v) in table.iter() {
                    let child = path.key(name);
                    let key_span = table.key(name).and_then(toml_edit::Key::span);
                    self.record(child.clone(), key_span, v.span());
                    self.value(&child, v);
                }
            }
            Value::Array(array) => {
                for (i, v) in array.iter().enumerate() {
                    let element = path.index(i);
                    self.record(element.clone(), None, v.span());
                    self.value(&element, v);
                }
            }
            _ => {}
        }
    }
}

// === impl LineIndex ===

/// Byte offset → (line, column), both from 1, the column counted in characters.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        // An offset at the very end (an error at EOF) is shown on the last character's line.
        let mut offset = offset.min(self.text.len());
        if offset == self.text.len() && offset > 0 {
            offset -= 1;
        }
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(locator: &Locator, path: &str) -> (usize, usize) {
        match locator.locate(&KeyPath::parse(path), false) {
            Some(Location::File { line, column, .. }) => (line, column),
            other => panic!("no file location for {path}: {other:?}"),
        }
    }

    #[test]
    fn locates_keys_values_and_missing_keys() {
        let text = "a = 1\n[t]\nb = \"x\"\n[[routes]]\nid = \"r\"\nmatch = { path = \"/x\" }\n\
                    [[routes]]\nmatch.path = \"/y\"\n";
        let locator = Locator::parse("f.toml", text).unwrap();
        assert_eq!(at(&locator, "a"), (1, 5));
        assert_eq!(at(&locator, "t.b"), (3, 5));
        assert_eq!(at(&locator, "routes[0].id"), (5, 6));
        assert_eq!(at(&locator, "routes[0].match.path"), (6, 18));
        assert_eq!(at(&locator, "routes[1].match.path"), (8, 14));
        assert_eq!(at(&locator, "routes[1].mode"), (7, 1));
        assert_eq!(at(&locator, "t.missing"), (2, 1));
        assert_eq!(at(&locator, "nothing.at.all"), (1, 1));
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = Locator::parse("f.toml", "a = 1\nb = = 2\n").unwrap_err();
        assert!(
            matches!(err.location, Some(Location::File { line: 2, .. })),
            "{err}"
        );
        let err = Locator::parse("f.toml", "a = \"open\n").unwrap_err();
        assert!(
            matches!(err.location, Some(Location::File { line: 1, .. })),
            "{err}"
        );
    }
}
