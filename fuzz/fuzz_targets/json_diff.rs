//! The response diff on two arbitrary bodies: the first byte picks the content type (JSON
//! most of the time, sometimes HTML, text or gzip-declared JSON), the rest is split at the
//! first `0xFF` into the legacy and the candidate body. `compare`, `classify` and
//! serialising the comparison must never panic; a body compared with itself is equal.

#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use strangler::diff::{self, DiffRules, NoiseBaseline, Observed};

fn observed(content_type: &'static str, gzip: bool, body: &[u8]) -> Observed {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Observed {
        status: 200,
        headers,
        body: Bytes::copy_from_slice(body),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (content_type, gzip) = match kind % 8 {
        0 => ("text/html; charset=utf-8", false),
        1 => ("text/plain", false),
        2 => ("application/json", true),
        3 => ("application/problem+json", false),
        _ => ("application/json", false),
    };
    let (left, right) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b"{}"[..]),
    };
    let rules = DiffRules::default();
    let legacy = observed(content_type, gzip, left);
    let candidate = observed(content_type, gzip, right);
    let comparison = diff::compare(&legacy, &candidate, &rules);
    assert!(comparison.differences.len() <= comparison.total);
    let _ = serde_json::to_string(&comparison);
    let _ = diff::classify(&comparison, &NoiseBaseline::new());
    let same = diff::compare(&legacy, &legacy.clone(), &rules);
    assert_eq!(same.total, 0, "a body differs from itself: {same:?}");
});
