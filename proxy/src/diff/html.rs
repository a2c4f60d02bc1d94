//! HTML bodies: both pages are rewritten to a normal form and the first place they differ is
//! reported with some context.
//!
//! The normal form comes from a small tokenizer, not a full HTML parser: tag and attribute
//! names lower-cased, attributes sorted by name (the first of duplicates wins, as in HTML),
//! values unquoted and re-quoted (`a=x`, `a='x'` and `a="x"` agree; `disabled` and
//! `disabled=""` agree), `<br/>` as `<br>`, comments dropped, and text with runs of ASCII
//! whitespace collapsed and trimmed at tag boundaries. The last means `a <b>` and `a<b>`
//! agree, a formatting difference template engines make all the time, at the price of
//! missing the rare spacing change that shows. Entities are not decoded (`&amp;` and `&#38;`
//! differ). `<script>` and `<style>` content is taken as text up to its closing tag.

use super::report::excerpts;

/// Excerpts around the first difference of the normal forms, if they differ.
pub(super) fn compare(legacy: &str, candidate: &str) -> Option<(String, String)> {
    let (a, b) = (normalise(legacy), normalise(candidate));
    (a != b).then(|| excerpts(&a, &b))
}

/// The normal form of an HTML document (see the module docs).
pub(super) fn normalise(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) != Some(&b'<') {
            i += 1;
            continue;
        }
        let Some((markup, end)) = markup(html, i) else {
            i += 1;
            continue;
        };
        push_text(&mut out, html.get(text_start..i).unwrap_or_default());
        let raw_text = match &markup {
            Markup::Start { name, .. } if name == "script" || name == "style" => Some(name.clone()),
            _ => None,
        };
        markup.render(&mut out);
        i = end;
        if let Some(name) = raw_text {
            let close = find_close(bytes, end, &name);
            push_text(&mut out, html.get(end..close).unwrap_or_default());
            i = close;
        }
        text_start = i;
    }
    push_text(&mut out, html.get(text_start..).unwrap_or_default());
    out
}

/// One piece of markup.
enum Markup {
    /// A comment: dropped.
    Comment,
    /// `<!DOCTYPE …>`, `<?…>`: kept, lower-cased, whitespace collapsed.
    Declaration(String),
    /// A start tag with its attributes, sorted by name.
    Start {
        name: String,
        attributes: Vec<(String, String)>,
    },
    /// An end tag.
    End(String),
}

impl Markup {
    fn render(self, out: &mut String) {
        match self {
            Self::Comment => {}
            Self::Declaration(text) => {
                out.push('<');
                out.push_str(&text);
                out.push('>');
            }
            Self::Start { name, attributes } => {
                out.push('<');
                out.push_str(&name);
                for (key, value) in attributes {
                    out.push(' ');
                    out.push_str(&key);
                    if !value.is_empty() {
                        out.push_str("=\"");
                        out.push_str(&value.replace('"', "&quot;"));
                        out.push('"');
                    }
                }
                out.push('>');
            }
            Self::End(name) => {
                out.push_str("</");
                out.push_str(&name);
                out.push('>');
            }
        }
    }
}

/// The markup starting at `at` (a `<`) and the index just past it, or `None` if this `<` is
/// text (`a < b`).
fn markup(html: &str, at: usize) -> Option<(Markup, usize)> {
    let bytes = html.as_bytes();
    let rest = html.get(at..)?;
    let after = |from: usize, pattern: &str| {
        html.get(from..)
            .and_then(|r| r.find(pattern))
            .map_or(html.len(), |p| from + p + pattern.len())
    };
    if rest.starts_with("<!--") {
        return Some((Markup::Comment, after(at + 4, "-->")));
    }
    let next = *bytes.get(at + 1)?;
    if next == b'!' || next == b'?' {
        let end = after(at + 1, ">");
        let inner = html.get(at + 1..end).unwrap_or_default();
        let inner = inner.strip_suffix('>').unwrap_or(inner);
        let text = collapse(inner).to_ascii_lowercase();
        return Some((Markup::Declaration(text), end));
    }
    if next == b'/' && bytes.get(at + 2).is_some_and(u8::is_ascii_alphabetic) {
        let (name, _) = tag_name(html, at + 2);
        return Some((Markup::End(name), after(at + 2, ">")));
    }
    if !next.is_ascii_alphabetic() {
        return None;
    }
    let (name, mut p) = tag_name(html, at + 1);
    let mut attributes: Vec<(String, String)> = Vec::new();
    let end = loop {
        while bytes
            .get(p)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b'/')
        {
            p += 1;
        }
        match bytes.get(p) {
            None => break html.len(),
            Some(b'>') => break p + 1,
            Some(_) => {}
        }
        let start = p;
        while bytes
            .get(p)
            .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'=' | b'>' | b'/'))
        {
            p += 1;
        }
        if p == start {
            // A stray `=`: skip it so the scan moves on.
            p += 1;
            continue;
        }
        let key = html.get(start..p).unwrap_or_default().to_ascii_lowercase();
        while bytes.get(p).is_some_and(u8::is_ascii_whitespace) {
            p += 1;
        }
        let mut value = "";
        if bytes.get(p) == Some(&b'=') {
            p += 1;
            while bytes.get(p).is_some_and(u8::is_ascii_whitespace) {
                p += 1;
            }
            match bytes.get(p) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let from = p + 1;
                    let to = html
                        .get(from..)
                        .and_then(|r| r.find(char::from(quote)))
                        .map_or(html.len(), |q| from + q);
                    value = html.get(from..to).unwrap_or_default();
                    p = (to + 1).min(html.len());
                }
                _ => {
                    let from = p;
                    while bytes
                        .get(p)
                        .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>')
                    {
                        p += 1;
                    }
                    value = html.get(from..p).unwrap_or_default();
                }
            }
        }
        if !attributes.iter().any(|(k, _)| *k == key) {
            attributes.push((key, value.to_owned()));
        }
    };
    attributes.sort();
    Some((Markup::Start { name, attributes }, end))
}

/// The lower-cased tag name starting at `from`, and the index after it.
fn tag_name(html: &str, from: usize) -> (String, usize) {
    let bytes = html.as_bytes();
    let mut p = from;
    while bytes
        .get(p)
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'_'))
    {
        p += 1;
    }
    let name = html.get(from..p).unwrap_or_default().to_ascii_lowercase();
    (name, p)
}

/// Where `</name` (any case) starts at or after `from`, or the end.
fn find_close(bytes: &[u8], from: usize, name: &str) -> usize {
    let n = name.len();
    (from..bytes.len())
        .find(|&k| {
            bytes.get(k..k + 2) == Some(b"</")
                && bytes
                    .get(k + 2..k + 2 + n)
                    .is_some_and(|t| t.eq_ignore_ascii_case(name.as_bytes()))
        })
        .unwrap_or(bytes.len())
}

fn push_text(out: &mut String, text: &str) {
    let text = collapse(text);
    out.push_str(&text);
}

/// Runs of ASCII whitespace as one space, trimmed.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_in_any_order_and_quoting_agree() {
        let a = r#"<DIV class="a b" id='x' data-n=3 hidden>hi</div>"#;
        let b = r#"<div hidden="" data-n="3" ID="x"   class="a b" >hi</DIV>"#;
        assert_eq!(normalise(a), normalise(b));
        assert_eq!(
            normalise(a),
            r#"<div class="a b" data-n="3" hidden id="x">hi</div>"#
        );
    }

    #[test]
    fn quoted_values_keep_their_content() {
        let a = r#"<a title="x > y" href='/p?a=1&b="2"'>t</a>"#;
        assert_eq!(
            normalise(a),
            r#"<a href="/p?a=1&b=&quot;2&quot;" title="x > y">t</a>"#
        );
        assert_ne!(normalise(r#"<a title="x">"#), normalise(r#"<a title="y">"#));
    }

    #[test]
    fn whitespace_comments_and_self_closing() {
        let a = "<!DOCTYPE html>\n<p>\n   Hello,\n   world  </p><!-- v1 --><br/>";
        let b = "<!doctype   html><p>Hello, world</p><!-- v2 build 7 --><br>";
        assert_eq!(normalise(a), normalise(b));
    }

    #[test]
    fn script_content_is_text() {
        let html = "<script>if (a < b && c > d) {}</SCRIPT><p>x</p>";
        assert_eq!(
            normalise(html),
            "<script>if (a < b && c > d) {}</script><p>x</p>"
        );
    }

    #[test]
    fn text_change_is_shown_in_context() {
        let a = "<ul><li>Price: 10 EUR</li></ul>";
        let b = "<ul>\n  <li>Price: 12 EUR</li>\n</ul>";
        let (x, y) = compare(a, b).unwrap();
        assert!(
            x.contains("Price: 10") && y.contains("Price: 12"),
            "{x} / {y}"
        );
    }

    #[test]
    fn broken_markup_does_not_panic() {
        for html in [
            "<",
            "<a",
            "<a b='",
            "<!--",
            "</",
            "<a =x>",
            "<a\u{e9}=\u{e9}>",
            "a < b",
            "<?",
        ] {
            let _ = normalise(html);
        }
        assert_eq!(normalise("a < b"), "a < b");
    }
}
