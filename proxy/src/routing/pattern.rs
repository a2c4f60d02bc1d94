//! Path patterns — `/exact`, `/prefix/*`, `/template/{param}` (a template may end in `/*`) —
//! parsed once at compile time and matched against request paths without allocating.
//!
//! A request path is split on literal `/` only, so an encoded `%2F` never separates
//! segments. A literal segment matches a request segment when their percent-decoded bytes are
//! equal: `/caf%C3%A9`, `/caf%c3%a9` and a raw UTF-8 `/café` all match a pattern written
//! `/café`, and `/%61pi` matches `/api` (an upstream decodes it that way, so encoding a path
//! must not get a request past its route). Parameters are captured as received, still encoded.

/// One position of a compiled pattern, ordered from least to most specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A trailing `*`: the rest of the path, including nothing at all.
    Rest,
    /// The end of an exact pattern: the request path must end here.
    End,
    /// A `{param}`: any one non-empty segment.
    Param,
    /// A literal segment.
    Literal,
}

/// One segment of a compiled pattern.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    /// Matches a request segment whose percent-decoded bytes equal `decoded`.
    Literal {
        /// The segment as written in `routes.toml` (used for example requests).
        raw: Box<str>,
        /// The segment percent-decoded once, compared against decoded request segments.
        decoded: Box<[u8]>,
    },
    /// Matches any one non-empty segment (its name is in [`PathPattern::params`]).
    Param,
}

impl Segment {
    /// Whether one request segment matches.
    fn matches(&self, part: &str) -> bool {
        match self {
            Segment::Literal { decoded, .. } => segment_eq(part.as_bytes(), decoded),
            Segment::Param => !part.is_empty(),
        }
    }
}

/// How many segments of a request path are split up front: enough for any real route.
/// Longer paths and patterns still match correctly, only more slowly.
pub(crate) const SPLIT: usize = 16;

/// A request path split on `/` once, shared by every route tried.
#[derive(Debug, Clone)]
pub(crate) struct RequestPath<'p> {
    /// The path after its leading `/`, without the query.
    pub(crate) rest: &'p str,
    /// The first [`SPLIT`] segments; `parts[len..]` are unused.
    parts: [&'p str; SPLIT],
    /// How many of `parts` are filled (at least 1: the empty path after `/` is one segment).
    len: usize,
    /// Whether the path has more than [`SPLIT`] segments.
    long: bool,
}

impl<'p> RequestPath<'p> {
    /// Splits `rest`, the request path after its leading `/`.
    pub(crate) fn new(rest: &'p str) -> Self {
        let mut parts = [""; SPLIT];
        let mut len = 0;
        let mut long = false;
        for part in rest.split('/') {
            match parts.get_mut(len) {
                Some(slot) => *slot = part,
                None => {
                    long = true;
                    break;
                }
            }
            len += 1;
        }
        Self {
            rest,
            parts,
            len,
            long,
        }
    }

    /// The first segment (empty for `/`).
    pub(crate) fn first(&self) -> &'p str {
        self.parts[0]
    }
}

/// A compiled `match.path`.
#[derive(Debug, Clone)]
pub(crate) struct PathPattern {
    /// The segments before the end (or before the trailing `*`).
    segments: Box<[Segment]>,
    /// Whether the pattern ends in `/*`.
    prefix: bool,
    /// Parameter names and the index of the segment each one captures.
    params: Box<[(Box<str>, usize)]>,
}

/// Why a `match.path` could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    /// The path does not begin with `/`.
    #[error("path `{0}` does not start with `/`")]
    NoLeadingSlash(String),
    /// The path holds a character no request path can hold at that place.
    #[error(
        "path `{path}` contains {what}; only the path is matched (no query, no fragment, no spaces)"
    )]
    BadCharacter { path: String, what: &'static str },
    /// `*` somewhere other than as the whole last segment.
    #[error("in path `{0}`, `*` may only be the whole last segment, as in `/misc/*`")]
    MisplacedStar(String),
    /// `{` or `}` that does not wrap a whole segment.
    #[error("in path `{0}`, a parameter must be a whole segment, as in `/api/products/{{id}}`")]
    PartialParam(String),
    /// `{}` or a name with other characters than letters, digits, `_` and `-`.
    #[error(
        "in path `{path}`, parameter name `{name}` must be non-empty letters, digits, `_` or `-`"
    )]
    BadParamName { path: String, name: String },
    /// The same name twice in one template.
    #[error("in path `{path}`, parameter `{name}` appears twice")]
    DuplicateParam { path: String, name: String },
}

impl PathPattern {
    /// Parses a pattern as written in `match.path`.
    pub(crate) fn parse(path: &str) -> Result<Self, PatternError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(PatternError::NoLeadingSlash(path.to_owned()));
        };
        if let Some(what) = bad_character(path) {
            return Err(PatternError::BadCharacter {
                path: path.to_owned(),
                what,
            });
        }
        let mut segments = Vec::new();
        let mut params: Vec<(Box<str>, usize)> = Vec::new();
        let mut prefix = false;
        let mut parts = rest.split('/').peekable();
        while let Some(part) = parts.next() {
            if part == "*" {
                if parts.peek().is_some() {
                    return Err(PatternError::MisplacedStar(path.to_owned()));
                }
                prefix = true;
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    let name = name.to_owned();
                    return Err(PatternError::BadParamName {
                        path: path.to_owned(),
                        name,
                    });
                }
                if params.iter().any(|(n, _)| &**n == name) {
                    let name = name.to_owned();
                    return Err(PatternError::DuplicateParam {
                        path: path.to_owned(),
                        name,
                    });
                }
                params.push((name.into(), segments.len()));
                segments.push(Segment::Param);
            } else if part.contains('*') {
                return Err(PatternError::MisplacedStar(path.to_owned()));
            } else if part.contains(['{', '}']) {
                return Err(PatternError::PartialParam(path.to_owned()));
            } else {
                let decoded = decode(part.as_bytes()).collect();
                segments.push(Segment::Literal {
                    raw: part.into(),
                    decoded,
                });
            }
        }
        Ok(Self {
            segments: segments.into(),
            prefix,
            params: params.into(),
        })
    }

    /// Whether the request path matches. With `first_known`, the caller has already
    /// established that a literal first segment matches (the index did).
    pub(crate) fn matches(&self, path: &RequestPath<'_>, first_known: bool) -> bool {
        let n = self.segments.len();
        if n > SPLIT {
            return self.matches_rest(path.rest);
        }
        let count_ok = if self.prefix {
            path.len >= n
        } else {
            path.len == n && !path.long
        };
        let skip = usize::from(first_known && self.first_literal().is_some());
        count_ok
            && path.parts.get(..n).is_some_and(|parts| {
                self.segments
                    .iter()
                    .zip(parts)
                    .skip(skip)
                    .all(|(s, part)| s.matches(part))
            })
    }

    /// [`matches`](Self::matches) on the unsplit path, for patterns longer than [`SPLIT`].
    fn matches_rest(&self, rest: &str) -> bool {
        let mut parts = rest.split('/');
        let all = self
            .segments
            .iter()
            .all(|s| parts.next().is_some_and(|part| s.matches(part)));
        all && (self.prefix || parts.next().is_none())
    }

    /// The kind of every position, ending with [`Kind::End`] or [`Kind::Rest`].
    pub(crate) fn kinds(&self) -> Box<[Kind]> {
        let tail = if self.prefix { Kind::Rest } else { Kind::End };
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal { .. } => Kind::Literal,
                Segment::Param => Kind::Param,
            })
            .chain(std::iter::once(tail))
            .collect()
    }

    /// The decoded first literal segment, if the pattern starts with one (for the index).
    pub(crate) fn first_literal(&self) -> Option<&[u8]> {
        match self.segments.first() {
            Some(Segment::Literal { decoded, .. }) => Some(decoded),
            _ => None,
        }
    }

    /// Whether two patterns of the same [`kinds`](Self::kinds) have equal literals, i.e. can
    /// match the same request path.
    pub(crate) fn same_literals(&self, other: &Self) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&*other.segments)
                .all(|pair| match pair {
                    (Segment::Literal { decoded: a, .. }, Segment::Literal { decoded: b, .. }) => {
                        a == b
                    }
                    (Segment::Literal { .. }, Segment::Param)
                    | (Segment::Param, Segment::Literal { .. }) => false,
                    (Segment::Param, Segment::Param) => true,
                })
    }

    /// The decoded literals in order, with params as empty slices (a deterministic tiebreak).
    pub(crate) fn literal_key(&self) -> impl Iterator<Item = &[u8]> {
        self.segments.iter().map(|s| match s {
            Segment::Literal { decoded, .. } => &**decoded,
            Segment::Param => &[],
        })
    }

    /// A concrete request path this pattern matches (for overlap diagnostics).
    pub(crate) fn example(&self) -> String {
        let mut out = String::new();
        for segment in &*self.segments {
            out.push('/');
            match segment {
                Segment::Literal { raw, .. } => out.push_str(raw),
                Segment::Param => out.push('1'),
            }
        }
        if self.prefix {
            out.push_str("/anything");
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// The parameter names and the segment index each captures, in path order.
    pub(crate) fn params(&self) -> &[(Box<str>, usize)] {
        &self.params
    }
}

/// What in `path` no request path can hold, if anything.
fn bad_character(path: &str) -> Option<&'static str> {
    if path.contains('?') {
        Some("`?`")
    } else if path.contains('#') {
        Some("`#`")
    } else if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        Some("a space or control character")
    } else {
        None
    }
}

/// Whether a request segment, percent-decoded, equals the decoded literal.
pub(crate) fn segment_eq(segment: &[u8], decoded: &[u8]) -> bool {
    // Decoding only shrinks, so a shorter segment can never match.
    if segment.len() < decoded.len() {
        false
    } else if segment.contains(&b'%') {
        decode(segment).eq(decoded.iter().copied())
    } else {
        bytes_eq(segment, decoded)
    }
}

/// Slice equality without a call to `memcmp`: route segments are short, and the call costs
/// more than the comparison.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Percent-decodes lazily; a `%` not followed by two hex digits stays as it is.
pub(crate) fn decode(bytes: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *bytes.get(i)?;
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&c| hex(c));
            let lo = bytes.get(i + 2).and_then(|&c| hex(c));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                i += 3;
                return Some(hi << 4 | lo);
            }
        }
        i += 1;
        Some(b)
    })
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> PathPattern {
        match PathPattern::parse(p) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Matches through the split path, checking that the unsplit path agrees.
    fn hit(p: &PathPattern, rest: &str) -> bool {
        let split = p.matches(&RequestPath::new(rest), false);
        assert_eq!(
            split,
            p.matches_rest(rest),
            "split and unsplit disagree on {rest}"
        );
        split
    }

    #[test]
    fn long_paths_and_patterns() {
        let deep = |n: usize| {
            (0..n)
                .map(|i| format!("s{i}"))
                .collect::<Vec<_>>()
                .join("/")
        };
        for n in [SPLIT - 1, SPLIT, SPLIT + 1, SPLIT + 5] {
            let exact = pat(&format!("/{}", deep(n)));
            let prefix = pat(&format!("/{}/*", deep(n)));
            assert!(exact.matches(&RequestPath::new(&deep(n)), false), "{n}");
            assert!(hit(&exact, &deep(n)), "{n}");
            assert!(!hit(&exact, &deep(n + 1)), "{n}");
            assert!(!hit(&exact, &deep(n - 1)), "{n}");
            assert!(hit(&prefix, &deep(n)), "{n}");
            assert!(hit(&prefix, &deep(n + 3)), "{n}");
            assert!(!hit(&prefix, &deep(n - 1)), "{n}");
            assert!(hit(&pat("/s0/*"), &deep(n)), "{n}");
            assert!(!hit(&pat("/s0/{x}"), &deep(n)), "{n}");
        }
    }

    #[test]
    fn exact_prefix_and_template() {
        let cases: &[(&str, &str, bool)] = &[
            ("/a", "a", true),
            ("/a", "a/", false),
            ("/a/", "a/", true),
            ("/a/", "a", false),
            ("/", "", true),
            ("/", "a", false),
            ("/misc/*", "misc", true),
            ("/misc/*", "misc/", true),
            ("/misc/*", "misc/a/b", true),
            ("/misc/*", "miscellaneous", false),
            ("/*", "", true),
            ("/*", "anything/at/all", true),
            ("/p/{id}", "p/42", true),
            ("/p/{id}", "p/", false),
            ("/p/{id}", "p/42/", false),
            ("/p/{id}", "p/4%2F2", true),
            ("/api/{v}/*", "api/v1", true),
            ("/api/{v}/*", "api/v1/x/y", true),
            ("/api/{v}/*", "api/", false),
            ("/a//b", "a//b", true),
            ("/a//b", "a/b", false),
        ];
        for &(p, rest, want) in cases {
            assert_eq!(hit(&pat(p), rest), want, "{p} vs /{rest}");
        }
    }

    #[test]
    fn percent_encoding_and_non_ascii() {
        let cafe = pat("/café");
        assert!(hit(&cafe, "café"));
        assert!(hit(&cafe, "caf%C3%A9"));
        assert!(hit(&cafe, "caf%c3%a9"));
        assert!(!hit(&cafe, "cafe"));
        let encoded = pat("/caf%C3%A9");
        assert!(hit(&encoded, "café"));
        assert!(hit(&pat("/api"), "%61pi"));
        // An encoded slash is data, not a separator.
        assert!(!hit(&pat("/a/b"), "a%2Fb"));
        assert!(hit(&pat("/a%2Fb"), "a%2fb"));
        // Broken escapes compare literally.
        assert!(hit(&pat("/100%"), "100%"));
        assert!(hit(&pat("/%zz"), "%zz"));
        assert!(hit(&pat("/%25"), "%"));
        assert!(hit(&pat("/%25"), "%25"));
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "a", "", "/a/*/b", "/a*", "/{", "/{}", "/x{id}", "/{a b}", "/{a}/{a}", "/a?b=1",
            "/a#f", "/a b",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn kinds_and_examples() {
        assert_eq!(
            &*pat("/a/{b}/*").kinds(),
            &[Kind::Literal, Kind::Param, Kind::Rest]
        );
        assert_eq!(&*pat("/").kinds(), &[Kind::Literal, Kind::End]);
        assert_eq!(&*pat("/*").kinds(), &[Kind::Rest]);
        for p in ["/", "/*", "/a/{b}/*", "/x/{y}", "/caf%C3%A9/"] {
            let compiled = pat(p);
            let example = compiled.example();
            let rest = example.strip_prefix('/').unwrap_or_default();
            assert!(
                hit(&compiled, rest),
                "{p} should match its example {example}"
            );
        }
    }
}
