//! RFC 6901 pointers: escaping a segment, and the patterns of `ignore` and `unordered`.
//!
//! Every difference has two spellings: its *pointer* (`/body/items/3/price`) and its *shape*,
//! the same pointer with array indices replaced by `*` (`/body/items/*/price`). The shape is
//! what the noise baseline learns, so that noise seen at item 3 is also noise at item 7.
//! Only indices the walker knows to be array indices become `*`; an object key that happens to
//! be numeric (`/body/prices/2024`) stays as it is.

/// Appends `/` and `segment`, escaped per RFC 6901 (`~` → `~0`, `/` → `~1`).
pub(super) fn push_segment(out: &mut String, segment: &str) {
    out.push('/');
    if !segment.contains(['~', '/']) {
        out.push_str(segment);
        return;
    }
    for c in segment.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// One segment of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// `*`: any one segment (an array index or an object key).
    Any,
    /// This exact segment, unescaped.
    Key(String),
}

impl Step {
    /// Whether this step accepts the (unescaped) segment `segment`.
    pub(super) fn accepts(&self, segment: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Key(key) => key == segment,
        }
    }
}

/// A pointer pattern such as `/body/items/*/updated_at`, parsed into steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    /// The segments after the leading `/`, unescaped.
    pub(super) steps: Vec<Step>,
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong in words a config user understands.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("pattern \"{text}\" must start with `/`"));
        };
        let mut steps = Vec::new();
        for raw in rest.split('/') {
            if raw.is_empty() {
                return Err(format!(
                    "pattern \"{text}\" has an empty segment (`//` or a trailing `/`)"
                ));
            }
            if raw == "*" {
                steps.push(Step::Any);
                continue;
            }
            if raw.contains('*') {
                return Err(format!(
                    "`*` in \"{text}\" must be a whole segment; it matches one key or index"
                ));
            }
            steps.push(Step::Key(unescape(raw).ok_or_else(|| {
                format!("pattern \"{text}\" has a `~` not followed by 0 or 1 (write `~0` for `~`, `~1` for `/`)")
            })?));
        }
        Ok(Self { steps })
    }

    /// Whether the pattern matches `pointer` or one of its ancestors (ignoring `/body/meta`
    /// ignores everything under it too).
    pub(super) fn covers(&self, pointer: &str) -> bool {
        let Some(rest) = pointer.strip_prefix('/') else {
            return false;
        };
        let mut segments = rest.split('/');
        self.steps.iter().all(|step| {
            segments
                .next()
                .and_then(unescape)
                .is_some_and(|segment| step.accepts(&segment))
        })
    }
}

/// Undoes RFC 6901 escaping; `None` for a `~` not followed by `0` or `1`.
fn unescape(segment: &str) -> Option<String> {
    if !segment.contains('~') {
        return Some(segment.to_owned());
    }
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_tilde_before_slash() {
        let mut out = String::new();
        push_segment(&mut out, "a/b~c");
        assert_eq!(out, "/a~1b~0c");
        assert_eq!(unescape("a~1b~0c").as_deref(), Some("a/b~c"));
        assert_eq!(unescape("~01").as_deref(), Some("~1"));
    }

    #[test]
    fn patterns_parse_and_cover() {
        let p = Pattern::parse("/body/items/*/updated_at").unwrap();
        assert!(p.covers("/body/items/3/updated_at"));
        assert!(p.covers("/body/items/x/updated_at/nested"));
        assert!(!p.covers("/body/items/3/price"));
        assert!(!p.covers("/body/items/3"));
        let escaped = Pattern::parse("/body/a~1b").unwrap();
        assert!(escaped.covers("/body/a~1b"));
        assert!(!escaped.covers("/body/a/b"));
        for bad in ["body", "/body//x", "/body/", "/body/a*", "/body/~2"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
