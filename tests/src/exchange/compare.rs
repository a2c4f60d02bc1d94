//! Direct vs proxied: what may differ (`Date`, connection framing, one `Via`) and a readable
//! report of everything else that does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::Exchange;

/// What the proxy adds to every answer, and the only thing it may add.
pub const VIA: &str = "1.1 strangler";

/// Header fields left out of comparisons: they describe a connection or a moment, not the
/// answer (a chunked answer may legitimately stay chunked, or not, across a hop).
pub const NOT_COMPARED: [&str; 4] = ["date", "connection", "keep-alive", "transfer-encoding"];

/// The end-to-end header fields of `answer`, grouped by name (values in order).
fn end_to_end(answer: &Exchange) -> BTreeMap<&str, Vec<&[u8]>> {
    let mut fields: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for (name, value) in &answer.headers {
        if !NOT_COMPARED.contains(&name.as_str()) {
            fields.entry(name).or_default().push(value);
        }
    }
    fields
}

/// How `proxied` differs from `direct`, one line per difference; empty when the proxy was
/// transparent: same status, same end-to-end header fields (but [`NOT_COMPARED`]), plus
/// exactly one `Via: 1.1 strangler`, and the same body bytes.
pub fn differences(direct: &Exchange, proxied: &Exchange) -> Vec<String> {
    let mut out = Vec::new();
    if direct.status != proxied.status {
        out.push(format!(
            "status: direct {} ≠ proxied {}",
            direct.status, proxied.status
        ));
    }
    let expected = end_to_end(direct);
    let mut got = end_to_end(proxied);
    let vias = got.remove("via").unwrap_or_default();
    match without_ours(&vias) {
        Some(rest) if !rest.is_empty() => {
            got.insert("via", rest);
        }
        Some(_) => {}
        None => {
            out.push(format!(
                "via: expected exactly one extra {VIA:?}, got {}",
                show_values(&vias)
            ));
            if let Some(theirs) = expected.get("via") {
                got.insert("via", theirs.clone());
            }
        }
    }
    for name in expected.keys().chain(got.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (expected.get(name), got.get(name));
        if a != b {
            let show = |v: Option<&Vec<&[u8]>>| {
                v.map(|v| show_values(v))
                    .unwrap_or_else(|| "(absent)".to_owned())
            };
            out.push(format!(
                "header {name}: direct {} ≠ proxied {}",
                show(a),
                show(b)
            ));
        }
    }
    if direct.body != proxied.body {
        out.push(body_difference(&direct.body, &proxied.body));
    }
    out
}

/// Panics with a readable report unless `proxied` matches `direct` (see [`differences`]).
pub fn assert_transparent(what: &str, direct: &Exchange, proxied: &Exchange) {
    let found = differences(direct, proxied);
    assert!(
        found.is_empty(),
        "{what}: the proxied answer differs from the direct one:\n  {}",
        found.join("\n  ")
    );
}

/// The `Via` values without the proxy's one (a field of its own, or appended to the last
/// one); `None` unless it appears exactly once.
fn without_ours<'a>(vias: &[&'a [u8]]) -> Option<Vec<&'a [u8]>> {
    let appended = format!(", {VIA}");
    let whole = vias.iter().filter(|v| **v == VIA.as_bytes()).count();
    let suffixed = vias
        .iter()
        .filter(|v| v.ends_with(appended.as_bytes()))
        .count();
    match (whole, suffixed, vias.split_last()) {
        (1, 0, _) => Some(
            vias.iter()
                .copied()
                .filter(|v| *v != VIA.as_bytes())
                .collect(),
        ),
        (0, 1, Some((last, rest))) if last.ends_with(appended.as_bytes()) => {
            let mut kept = rest.to_vec();
            kept.push(&last[..last.len() - appended.len()]);
            Some(kept)
        }
        _ => None,
    }
}

fn show_values(values: &[&[u8]]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| format!("{:?}", String::from_utf8_lossy(v)))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Lengths, and where and how the bodies first part ways.
fn body_difference(direct: &[u8], proxied: &[u8]) -> String {
    let at = direct
        .iter()
        .zip(proxied)
        .position(|(a, b)| a != b)
        .unwrap_or(direct.len().min(proxied.len()));
    let window = |body: &[u8]| {
        let from = at.saturating_sub(24);
        let to = (at + 40).min(body.len());
        format!("…{}…", body[from.min(to)..to].escape_ascii())
    };
    let mut text = format!(
        "body: direct {} bytes ≠ proxied {} bytes; first difference at byte {at}",
        direct.len(),
        proxied.len()
    );
    let _ = write!(
        text,
        "\n      direct:  {}\n      proxied: {}",
        window(direct),
        window(proxied)
    );
    text
}

#[cfg(test)]
mod tests {
    use super::{Exchange, differences};

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Exchange {
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect();
        Exchange {
            status,
            headers,
            body: body.to_owned().into(),
        }
    }

    #[test]
    fn only_via_date_and_framing_may_differ() {
        let direct = answer(
            200,
            &[
                ("date", "a"),
                ("vary", "x"),
                ("vary", "y"),
                ("transfer-encoding", "chunked"),
            ],
            "hi",
        );
        let proxied = answer(
            200,
            &[
                ("vary", "x"),
                ("vary", "y"),
                ("date", "b"),
                ("via", "1.1 strangler"),
            ],
            "hi",
        );
        assert_eq!(differences(&direct, &proxied), Vec::<String>::new());
        let via_cdn = answer(200, &[("via", "1.0 cdn")], "");
        let appended = answer(200, &[("via", "1.0 cdn, 1.1 strangler")], "");
        assert_eq!(differences(&via_cdn, &appended), Vec::<String>::new());
    }

    #[test]
    fn every_other_difference_is_reported() {
        let direct = answer(
            200,
            &[("vary", "x"), ("vary", "y"), ("etag", "\"1\"")],
            "hello world",
        );
        let proxied = answer(
            201,
            &[
                ("vary", "y"),
                ("vary", "x"),
                ("via", "1.1 strangler"),
                ("via", "1.1 strangler"),
            ],
            "hello wor1d",
        );
        let found = differences(&direct, &proxied);
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(found[0].starts_with("status: direct 200"));
        assert!(found[1].starts_with("via: expected exactly one extra"));
        assert!(
            found[2].starts_with("header etag: direct [\"\\\"1\\\"\"] ≠ proxied (absent)"),
            "{}",
            found[2]
        );
        assert!(found[3].starts_with("header vary:"));
        assert!(
            found[4].contains("first difference at byte 9"),
            "{}",
            found[4]
        );
        let bare = answer(
            200,
            &[("vary", "x"), ("vary", "y"), ("etag", "\"1\"")],
            "hello world",
        );
        assert_eq!(
            differences(&direct, &bare),
            vec![format!(
                "via: expected exactly one extra {:?}, got []",
                super::VIA
            )]
        );
    }
}
