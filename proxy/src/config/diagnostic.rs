//! Diagnostics: what is wrong, where, and what to do.
//!
//! A [`Diagnostic`] names a key path such as `routes[2].match.path`; its [`Location`] is
//! filled in last, from the key, by the locator (or it names the environment variable the
//! value came from). [`KeyPath`] is the one spelling of such paths, shared by the checks and
//! the locator so that both agree on what a key is called.

use std::fmt;

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The key path, e.g. `routes[2].match.path`, or `""` for the file as a whole.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Where: file and line, or the environment variable that set the value.
    pub location: Option<Location>,
}

impl Diagnostic {
    /// A diagnostic for `key` (see [`Diagnostic::key`]) saying `message`, without location.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
            hint: None,
            location: None,
        }
    }

    /// Adds what the user should do.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets where the problem is.
    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A position in the configuration file; line and column count from 1.
    File {
        /// The file as the user named it (or the name given to `from_toml_str`).
        path: String,
        /// Line, from 1.
        line: usize,
        /// Column in characters, from 1.
        column: usize,
    },
    /// An environment variable such as `STRANGLER__LISTEN__ADDRESS`.
    Env {
        /// The variable's name.
        var: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, line, column } => write!(f, "{path}:{line}:{column}"),
            Self::Env { var } => write!(f, "env {var}"),
        }
    }
}

/// All problems found by one load, in file order; `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

fn lines(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

// === KeyPath ===

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A key path such as `routes[2].match.path`; keys that are not bare TOML keys are quoted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct KeyPath(pub(crate) Vec<Segment>);

impl KeyPath {
    /// The path one key further down.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// The path one array element further down.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The enclosing path, if any.
    pub(crate) fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    /// Whether `self` is `other` or lies inside it.
    pub(crate) fn starts_with(&self, other: &Self) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The last table key of the path, e.g. `mode` for `routes[1].mode`.
    pub(crate) fn last_key(&self) -> &str {
        self.0
            .iter()
            .rev()
            .find_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .unwrap_or("")
    }

    /// Reads a path as printed by [`fmt::Display`] (or by the `config` crate, which does not
    /// quote). Lenient: anything unexpected is taken as part of a key.
    pub(crate) fn parse(text: &str) -> Self {
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        let mut bare = String::new();
        let flush = |bare: &mut String, segments: &mut Vec<Segment>| {
            if !bare.is_empty() {
                segments.push(Segment::Key(std::mem::take(bare)));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '.' => flush(&mut bare, &mut segments),
                '"' if bare.is_empty() => {
                    let mut quoted = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => quoted.extend(chars.next()),
                            c => quoted.push(c),
                        }
                    }
                    segments.push(Segment::Key(quoted));
                }
                '[' => {
                    flush(&mut bare, &mut segments);
                    let mut digits = String::new();
                    while let Some(c) = chars.next_if(|c| *c != ']') {
                        digits.push(c);
                    }
                    chars.next();
                    match digits.trim().parse() {
                        Ok(i) => segments.push(Segment::Index(i)),
                        Err(_) => segments.push(Segment::Key(format!("[{digits}]"))),
                    }
                }
                c => bare.push(c),
            }
        }
        flush(&mut bare, &mut segments);
        Self(segments)
    }
}

/// Whether `key` can be written without quotes (TOML bare key, and `config` path identifier).
pub(crate) fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))?;
                    }
                }
            }
        }
        Ok(())
    }
}

// === spelling ===

/// The candidate closest to `word` by edit distance (with transpositions), if close enough
/// to be a plausible typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count().max(3) / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(&word_lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions, transpositions.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_round_trip() {
        for text in [
            "routes[2].match.path",
            "upstreams.legacy.url",
            "routes[0].match.headers.\"x.y\"",
            "",
        ] {
            assert_eq!(KeyPath::parse(text).to_string(), text);
        }
        assert_eq!(KeyPath::parse("a[1][2].b").0.len(), 4);
    }

    #[test]
    fn suggests_close_words_only() {
        let known = ["match", "mode", "legacy", "extracted"];
        assert_eq!(suggest("mtach", known), Some("match"));
        assert_eq!(suggest("Mode", known), Some("mode"));
        assert_eq!(suggest("extarcted", known), Some("extracted"));
        assert_eq!(suggest("zzz", known), None);
    }

    #[test]
    fn displays_location_key_message_hint() {
        let d = Diagnostic::new("routes[1].mode", "unknown mode \"shadw\"")
            .hint("use one of legacy, shadow")
            .at(Location::File {
                path: "routes.toml".into(),
                line: 14,
                column: 8,
            });
        assert_eq!(
            d.to_string(),
            "routes.toml:14:8: routes[1].mode: unknown mode \"shadw\"; use one of legacy, shadow"
        );
    }
}
