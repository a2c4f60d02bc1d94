//! Comparing the configured response headers, each by what it means rather than its bytes:
//! `content-type` by media type and parameters (case and order aside), `cache-control` and
//! `vary` as sets of directives, `set-cookie` by cookie names and attributes (values differ
//! per session and are never shown: they may be credentials), everything else exactly.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::pointer::push_segment;
use super::report::Sink;

/// Compares every header the rules name, reporting at `/headers/<name>`.
pub(super) fn compare(legacy: &HeaderMap, candidate: &HeaderMap, sink: &mut Sink<'_>) {
    let rules = sink.rules;
    for name in &rules.headers {
        // Byte-equal values mean the same: the common case needs no normalising.
        if legacy
            .get_all(name)
            .iter()
            .eq(candidate.get_all(name).iter())
        {
            continue;
        }
        let a: Vec<&HeaderValue> = legacy.get_all(name).iter().collect();
        let b: Vec<&HeaderValue> = candidate.get_all(name).iter().collect();
        if normalise(name, &a) == normalise(name, &b) {
            continue;
        }
        let mut pointer = String::from("/headers");
        push_segment(&mut pointer, name.as_str());
        let cookie = name == http::header::SET_COOKIE;
        sink.push_checked(&pointer, || (shown(&a, cookie), shown(&b, cookie)));
    }
}

/// What a difference shows: absent, one value, or all values in order.
fn shown(values: &[&HeaderValue], cookie: bool) -> Option<Value> {
    let text = |v: &&HeaderValue| {
        let text = String::from_utf8_lossy(v.as_bytes());
        Value::String(if cookie {
            redact_cookie(&text)
        } else {
            text.into_owned()
        })
    };
    match values {
        [] => None,
        [one] => Some(text(one)),
        many => Some(Value::Array(many.iter().map(text).collect())),
    }
}

/// The comparable form of a header's values.
fn normalise(name: &HeaderName, values: &[&HeaderValue]) -> Vec<String> {
    let texts = values
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
    match name.as_str() {
        "set-cookie" => {
            let mut cookies: Vec<String> = texts.map(|t| cookie_shape(&t)).collect();
            cookies.sort();
            cookies
        }
        "content-type" => texts.map(|t| media_type(&t)).collect(),
        "cache-control" | "vary" | "allow" => {
            // Lists: repeated header lines and commas mean the same.
            let mut items: Vec<String> = texts
                .flat_map(|t| {
                    t.split(',')
                        .map(|i| list_item(i, name.as_str() != "cache-control"))
                        .collect::<Vec<_>>()
                })
                .filter(|i| !i.is_empty())
                .collect();
            items.sort();
            items.dedup();
            items
        }
        _ => texts.collect(),
    }
}

/// `Application/JSON; Charset="UTF-8"` → `application/json;charset=utf-8`.
fn media_type(text: &str) -> String {
    let mut parts = text.split(';');
    let mut out = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut params: Vec<String> = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches('"');
            let v = if k == "charset" {
                v.to_ascii_lowercase()
            } else {
                v.to_owned()
            };
            Some(format!("{k}={v}"))
        })
        .collect();
    params.sort();
    for p in params {
        out.push(';');
        out.push_str(&p);
    }
    out
}

/// A cache-control directive (`Max-Age="60"` → `max-age=60`) or a vary/allow token.
fn list_item(item: &str, token_only: bool) -> String {
    let item = item.trim();
    if token_only {
        return item.to_ascii_lowercase();
    }
    match item.split_once('=') {
        Some((k, v)) => format!(
            "{}={}",
            k.trim().to_ascii_lowercase(),
            v.trim().trim_matches('"')
        ),
        None => item.to_ascii_lowercase(),
    }
}

/// A cookie's name and attributes, without its value. `Expires` counts by presence only: its
/// date moves with the clock.
fn cookie_shape(text: &str) -> String {
    let mut parts = text.split(';');
    let name = parts
        .next()
        .unwrap_or_default()
        .split('=')
        .next()
        .unwrap_or_default()
        .trim();
    let mut attributes: Vec<String> = parts
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            match k.as_str() {
                "expires" => k,
                "domain" => format!("{k}={}", v.trim_start_matches('.').to_ascii_lowercase()),
                "samesite" => format!("{k}={}", v.to_ascii_lowercase()),
                _ if v.is_empty() => k,
                _ => format!("{k}={v}"),
            }
        })
        .filter(|a| !a.is_empty())
        .collect();
    attributes.sort();
    let mut out = name.to_owned();
    for a in attributes {
        out.push(';');
        out.push_str(&a);
    }
    out
}

/// `session=abc; Path=/` → `session=…; Path=/`.
fn redact_cookie(text: &str) -> String {
    match text.split_once(';') {
        Some((pair, rest)) => format!("{};{rest}", redact_pair(pair)),
        None => redact_pair(text),
    }
}

fn redact_pair(pair: &str) -> String {
    match pair.split_once('=') {
        Some((name, _)) => format!("{}=…", name.trim()),
        None => pair.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_by_meaning() {
        assert_eq!(
            media_type("Application/JSON; Charset=\"UTF-8\""),
            media_type("application/json;charset=utf-8")
        );
        assert_ne!(media_type("text/html"), media_type("text/plain"));
    }

    #[test]
    fn cookies_compare_without_values() {
        let a = cookie_shape("sid=abc; Path=/; HttpOnly; Expires=Wed, 21 Oct 2026 07:28:00 GMT");
        let b = cookie_shape("sid=xyz; httponly; path=/; expires=Thu, 22 Oct 2026 07:28:00 GMT");
        assert_eq!(a, b);
        assert_ne!(a, cookie_shape("sid=abc; Path=/"));
        assert_ne!(a, cookie_shape("session=abc; Path=/; HttpOnly; Expires=x"));
        assert_eq!(redact_cookie("sid=secret; Path=/"), "sid=…; Path=/");
        assert_eq!(redact_cookie("sid=secret"), "sid=…");
    }

    #[test]
    fn lists_ignore_order_case_and_line_splits() {
        let one = HeaderValue::from_static("Accept-Encoding, Origin");
        let two = [
            HeaderValue::from_static("origin"),
            HeaderValue::from_static("accept-encoding"),
        ];
        let vary = HeaderName::from_static("vary");
        assert_eq!(
            normalise(&vary, &[&one]),
            normalise(&vary, &[&two[0], &two[1]])
        );
        let cc = HeaderName::from_static("cache-control");
        let a = HeaderValue::from_static("max-age=60, public");
        let b = HeaderValue::from_static("Public, Max-Age=\"60\"");
        assert_eq!(normalise(&cc, &[&a]), normalise(&cc, &[&b]));
    }
}
