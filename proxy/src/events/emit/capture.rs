//! One part of a header's value: `response_header:location:/orders/{id}` reads `Location`
//! and keeps what stands at `{id}`. It is how a rule learns the id of something the monolith
//! answers with only a redirect — a form POST answered `303 See Other` to `/orders/ord-7` —
//! without changing the monolith.
//!
//! The template is a path with exactly one `{name}` segment. The value may be a path or an
//! absolute URL (its path is used); its query and fragment are ignored; the captured segment
//! is percent-decoded. A value whose path has another shape leaves the field absent, which
//! skips the rule (counted as `missing_field`), never a half-filled event.

/// A compiled template such as `/orders/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The template's segments after the leading `/`: `None` for the captured one.
    segments: Box<[Option<Box<str>>]>,
}

impl Capture {
    /// Compiles `template`; the error says what is wrong and what to write instead.
    pub fn parse(template: &str) -> Result<Self, (String, &'static str)> {
        let hint = "write a path with one {name} segment after the header, e.g. response_header:location:/orders/{id}";
        let Some(rest) = template.strip_prefix('/') else {
            return Err((format!("\"{template}\" is not a path template"), hint));
        };
        let mut segments = Vec::new();
        for segment in rest.split('/') {
            let param = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
            match param {
                Some(name) if !name.is_empty() && !name.contains(['{', '}']) => {
                    segments.push(None);
                }
                _ if segment.is_empty() || segment.contains(['{', '}']) => {
                    return Err((
                        format!("\"{template}\" has an empty or malformed segment `{segment}`"),
                        hint,
                    ));
                }
                _ => segments.push(Some(segment.into())),
            }
        }
        match segments.iter().filter(|s| s.is_none()).count() {
            1 => Ok(Self {
                segments: segments.into(),
            }),
            n => Err((
                format!("\"{template}\" has {n} {{name}} segments; a field takes exactly one"),
                hint,
            )),
        }
    }

    /// The captured segment of `value` (a path or an absolute URL), if it has the shape.
    pub fn apply(&self, value: &str) -> Option<String> {
        let path = path_of(value.trim());
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let rest = path.strip_prefix('/')?;
        let mut found = None;
        let mut parts = rest.split('/');
        for expected in &*self.segments {
            let part = parts.next()?;
            match expected {
                Some(literal) if **literal == *part => {}
                Some(_) => return None,
                None if part.is_empty() => return None,
                None => found = Some(percent_decode(part)?),
            }
        }
        if parts.next().is_some() {
            return None;
        }
        found
    }
}

/// The path of an absolute URL (`http://host/p` → `/p`, `//host/p` → `/p`), else `value`.
fn path_of(value: &str) -> &str {
    let after_authority = match value.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) =>
        {
            Some(rest)
        }
        _ => value.strip_prefix("//"),
    };
    match after_authority {
        Some(rest) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => value,
    }
}

/// `%XX` decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_absolute_urls_give_their_segment() {
        let orders = Capture::parse("/orders/{id}").unwrap();
        assert_eq!(orders.apply("/orders/ord-7").as_deref(), Some("ord-7"));
        assert_eq!(
            orders.apply("https://shop.example/orders/ord-7?from=cart#top"),
            Some("ord-7".into())
        );
        assert_eq!(orders.apply("//shop/orders/a%20b"), Some("a b".into()));
        let middle = Capture::parse("/api/carts/{session}/checkout").unwrap();
        assert_eq!(middle.apply("/api/carts/s-1/checkout"), Some("s-1".into()));
    }

    #[test]
    fn other_shapes_capture_nothing() {
        let orders = Capture::parse("/orders/{id}").unwrap();
        for value in [
            "/orders",
            "/orders/",
            "/orders/ord-7/lines",
            "/order/ord-7",
            "orders/ord-7",
            "http://shop",
            "/orders/%zz",
            "/orders/%ff",
        ] {
            assert_eq!(orders.apply(value), None, "{value}");
        }
    }

    #[test]
    fn templates_need_one_parameter() {
        for bad in [
            "orders/{id}",
            "/orders",
            "/{a}/{b}",
            "/orders/{}",
            "/orders//{id}",
            "/orders/x{id}",
        ] {
            assert!(Capture::parse(bad).is_err(), "{bad}");
        }
    }
}
