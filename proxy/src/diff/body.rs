//! Bodies: decode both, then compare by what the content type says they are.
//!
//! Both sides must agree on the kind (JSON, HTML, text, other) for a comparison by content;
//! otherwise (and for other types) the bodies are compared by length and SHA-256, and the
//! `content-type` header difference tells why. Identical bytes are equal whatever their type:
//! the same bytes under the same `Content-Encoding` are not even decoded (the common case).

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::{Value, json};

use super::decode::{Decoded, decode};
use super::report::{Sink, excerpts, fingerprint};
use super::{Observed, html, json};

/// What a body is, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `application/json`, `*/*+json`.
    Json,
    /// `text/html`, `application/xhtml+xml`.
    Html,
    /// Other `text/*`: compared exactly, shown as text.
    Text,
    /// Anything else, or no content type: compared as bytes.
    Bytes,
}

impl Kind {
    fn of(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(CONTENT_TYPE) else {
            return Self::Bytes;
        };
        let text = String::from_utf8_lossy(value.as_bytes());
        let media = text
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json" | "text/json" => Self::Json,
            m if m.ends_with("+json") => Self::Json,
            "text/html" | "application/xhtml+xml" => Self::Html,
            m if m.starts_with("text/") => Self::Text,
            _ => Self::Bytes,
        }
    }
}

/// Compares the bodies, reporting at `/body` (or under it, for JSON).
pub(super) fn compare(legacy: &Observed, candidate: &Observed, sink: &mut Sink<'_>) {
    // The same bytes under the same encoding: equal without decoding anything.
    let same_encoding = legacy
        .headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .eq(candidate.headers.get_all(CONTENT_ENCODING).iter());
    if same_encoding && legacy.body == candidate.body {
        return;
    }
    let max = sink.rules.max_body;
    let a = decode(&legacy.headers, &legacy.body, max);
    let b = decode(&candidate.headers, &candidate.body, max);
    let (a, b) = match (a, b) {
        (Ok(Decoded::Whole(a)), Ok(Decoded::Whole(b))) => (a, b),
        (a, b) => {
            let (x, y) = (
                summary(a, &legacy.body, max),
                summary(b, &candidate.body, max),
            );
            if x != y {
                sink.push_checked("/body", || (Some(x), Some(y)));
            }
            return;
        }
    };
    if a == b {
        return;
    }
    if sink.rules.ignores("/body") {
        sink.ignore();
        return;
    }
    let kind = Kind::of(&legacy.headers);
    let kind = if kind == Kind::of(&candidate.headers) {
        kind
    } else {
        Kind::Bytes
    };
    let texts = std::str::from_utf8(&a)
        .ok()
        .zip(std::str::from_utf8(&b).ok());
    match (kind, texts) {
        (Kind::Json, _) => compare_json(&a, &b, sink),
        (Kind::Html, Some((x, y))) => {
            if let Some((x, y)) = html::compare(x, y) {
                sink.push("/body", "/body", || (Some(x.into()), Some(y.into())));
            }
        }
        (Kind::Text, Some((x, y))) => {
            let (x, y) = excerpts(x, y);
            sink.push("/body", "/body", || (Some(x.into()), Some(y.into())));
        }
        _ => sink.push("/body", "/body", || {
            (Some(fingerprint(&a)), Some(fingerprint(&b)))
        }),
    }
}

/// JSON if both parse; otherwise one `/body` difference showing text excerpts (or hashes,
/// for bytes that are not UTF-8) and why each side that failed is not JSON.
fn compare_json(a: &Bytes, b: &Bytes, sink: &mut Sink<'_>) {
    let x = serde_json::from_slice::<Value>(a);
    let y = serde_json::from_slice::<Value>(b);
    if let (Ok(x), Ok(y)) = (&x, &y) {
        json::compare(x, y, sink);
        return;
    }
    let (mut vx, mut vy) = match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(sa), Ok(sb)) => {
            let (ea, eb) = excerpts(sa, sb);
            (json!({ "excerpt": ea }), json!({ "excerpt": eb }))
        }
        _ => (fingerprint(a), fingerprint(b)),
    };
    for (value, parsed) in [(&mut vx, &x), (&mut vy, &y)] {
        if let (Value::Object(map), Err(e)) = (value, parsed) {
            map.insert("error".into(), format!("not JSON: {e}").into());
        }
    }
    sink.push("/body", "/body", || (Some(vx), Some(vy)));
}

/// What a body that was not compared by content shows: `{len, sha256}` of the decoded bytes,
/// with a `note` if over `max_body`, or of the bytes as received with the decoding `error`.
fn summary(decoded: Result<Decoded, String>, raw: &Bytes, max: usize) -> Value {
    match decoded {
        Ok(Decoded::Whole(bytes)) => fingerprint(&bytes),
        Ok(Decoded::Over { len, sha256 }) => json!({
            "len": len,
            "sha256": sha256,
            "note": format!("over max_body ({max} bytes): compared by length and SHA-256"),
        }),
        Err(error) => {
            let mut value = fingerprint(raw);
            if let Value::Object(map) = &mut value {
                map.insert("error".into(), error.into());
            }
            value
        }
    }
}
