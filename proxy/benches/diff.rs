//! `diff::compare` on typical mirrored answers: a 1 000-item JSON list with a few changed
//! fields (ordered, and unordered with an ignore rule), the same list gzip-encoded, and a
//! 200 KiB HTML page with one changed price. Run with `cargo bench -p strangler --bench diff`.

use std::hint::black_box;
use std::io::Write;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use strangler::config::DiffConfig;
use strangler::diff::{DiffRules, Observed, compare};

fn answer(content_type: &'static str, body: Vec<u8>) -> Observed {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    Observed {
        status: 200,
        headers,
        body: Bytes::from(body),
    }
}

fn list(seed: u32, reverse: bool) -> Vec<u8> {
    let mut items: Vec<serde_json::Value> = (0..1000u32)
        .map(|i| {
            serde_json::json!({
                "id": i,
                "name": format!("product {i}"),
                "price": if i % 250 == 0 { f64::from(i + seed) } else { f64::from(i) * 1.5 },
                "updated_at": format!("2026-01-01T00:00:{:02}Z", (i + seed) % 60),
                "tags": ["a", "b", "c"],
            })
        })
        .collect();
    if reverse {
        items.reverse();
    }
    serde_json::to_vec(&serde_json::json!({ "items": items, "count": 1000 })).unwrap_or_default()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn page(price: &str) -> Vec<u8> {
    let mut html = String::from("<!DOCTYPE html><html><body>\n");
    for i in 0..2000 {
        html.push_str(&format!(
            "  <div class=\"row\" id=\"r{i}\">\n    <span>Item {i}</span> <!-- c -->\n  </div>\n"
        ));
    }
    html.push_str(&format!(
        "<p class='total'>Total: {price}</p></body></html>"
    ));
    html.into_bytes()
}

fn bench(c: &mut Criterion) {
    let rules = DiffRules::default();
    let unordered = DiffRules::new(&DiffConfig {
        unordered: vec!["/body/items".into()],
        ignore: vec!["/body/items/*/updated_at".into()],
        ..DiffConfig::default()
    })
    .unwrap_or_default();

    let (a, b) = (
        answer("application/json", list(0, false)),
        answer("application/json", list(1, false)),
    );
    c.bench_function("json 1000 items, ordered", |bench| {
        bench.iter(|| compare(black_box(&a), black_box(&b), &rules))
    });
    let reversed = answer("application/json", list(1, true));
    c.bench_function("json 1000 items, unordered + ignore", |bench| {
        bench.iter(|| compare(black_box(&a), black_box(&reversed), &unordered))
    });
    let mut zipped = answer("application/json", gzip(&list(0, false)));
    zipped
        .headers
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    c.bench_function("json 1000 items, gzip vs identity, equal", |bench| {
        bench.iter(|| compare(black_box(&a), black_box(&zipped), &rules))
    });
    let (x, y) = (
        answer("text/html", page("10.00")),
        answer("text/html", page("12.00")),
    );
    c.bench_function("html 200 KiB, one change", |bench| {
        bench.iter(|| compare(black_box(&x), black_box(&y), &rules))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
