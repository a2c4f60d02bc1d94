//! RFC 6901 JSON pointers, parsed once when a rule is compiled so a lookup only walks tokens.

use serde_json::Value;

/// A parsed JSON pointer: `""` is the whole document, `/a/0/b~1c` walks `a`, `0`, `b/c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The unescaped reference tokens.
    tokens: Box<[Box<str>]>,
}

/// Why a text is not a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// A non-empty pointer must start with `/`.
    #[error("a JSON pointer must start with `/` (or be empty for the whole body)")]
    NoLeadingSlash,
    /// `~` must be followed by `0` (for `~`) or `1` (for `/`).
    #[error("`~` must be followed by 0 or 1 (`~0` is `~`, `~1` is `/`)")]
    BadEscape,
}

impl Pointer {
    /// Parses `text` as RFC 6901 says.
    pub fn parse(text: &str) -> Result<Self, PointerError> {
        if text.is_empty() {
            return Ok(Self {
                tokens: Box::default(),
            });
        }
        let rest = text.strip_prefix('/').ok_or(PointerError::NoLeadingSlash)?;
        let tokens = rest
            .split('/')
            .map(unescape)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            tokens: tokens.into(),
        })
    }

    /// The value this pointer names in `doc`, if there is one.
    pub fn get<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        self.tokens
            .iter()
            .try_fold(doc, |value, token| match value {
                Value::Object(map) => map.get(&**token),
                Value::Array(items) => index(token).and_then(|i| items.get(i)),
                _ => None,
            })
    }
}

/// An array index token: digits without a leading zero (`-`, past the end, never exists).
fn index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

fn unescape(token: &str) -> Result<Box<str>, PointerError> {
    if !token.contains('~') {
        return Ok(token.into());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err(PointerError::BadEscape),
            },
            other => out.push(other),
        }
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_objects_arrays_and_escapes() {
        let doc = json!({"a": {"b/c": [10, {"d~e": true}]}, "": 1, "01": "x"});
        let get = |p: &str| Pointer::parse(p).unwrap().get(&doc).cloned();
        assert_eq!(get(""), Some(doc.clone()));
        assert_eq!(get("/a/b~1c/0"), Some(json!(10)));
        assert_eq!(get("/a/b~1c/1/d~0e"), Some(json!(true)));
        assert_eq!(get("/"), Some(json!(1)));
        assert_eq!(get("/01"), Some(json!("x")));
        assert_eq!(get("/a/b~1c/01"), None);
        assert_eq!(get("/a/b~1c/-"), None);
        assert_eq!(get("/a/b~1c/9"), None);
        assert_eq!(get("/a/missing"), None);
        assert_eq!(get("/a/b~1c/0/deeper"), None);
    }

    #[test]
    fn malformed_pointers_are_refused() {
        assert_eq!(Pointer::parse("id"), Err(PointerError::NoLeadingSlash));
        assert_eq!(Pointer::parse("/a~2"), Err(PointerError::BadEscape));
        assert_eq!(Pointer::parse("/a~"), Err(PointerError::BadEscape));
    }
}
