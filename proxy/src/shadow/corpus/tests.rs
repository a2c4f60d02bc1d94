//! Corpus tests: redaction, the JSON-lines round trip, the cap and its counted losses.

use std::path::Path;

use http::{HeaderMap, Method};
use tokio_util::task::TaskTracker;

use super::*;
use crate::shadow::summary::Entry;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn answer(status: u16, pairs: &[(&str, &str)], body: &[u8]) -> Observed {
    Observed {
        status,
        headers: headers(pairs),
        body: Bytes::copy_from_slice(body),
    }
}

/// A mismatch of `route` whose request carries every kind of secret.
fn mismatch(route: &str, correlation: &str, filler: usize) -> Mismatch {
    let request = headers(&[
        ("host", "shop.example"),
        ("authorization", "Bearer auth-secret"),
        ("proxy-authorization", "Basic proxy-secret"),
        ("cookie", "sid=cookie-secret; theme=dark"),
        ("x-candidate-key", "set-header-secret"),
        ("accept", "application/json"),
    ]);
    let legacy = answer(
        200,
        &[
            ("content-type", "application/json"),
            ("set-cookie", "sid=set-cookie-secret; Path=/; HttpOnly"),
        ],
        format!(
            "{{\"price_cents\":4999,\"pad\":\"{}\"}}",
            "x".repeat(filler)
        )
        .as_bytes(),
    );
    let candidate = answer(200, &[("content-type", "application/json")], &[0xff, 0x00]);
    let differences = [Entry {
        pointer: "/body/price_cents".into(),
        legacy: Some(4999.into()),
        candidate: Some(5000.into()),
        noise: false,
    }];
    let secret = ["X-Candidate-Key".to_owned()];
    Mismatch::new(&Exchange {
        route,
        correlation,
        at: "2025-01-01T00:00:00.000Z",
        method: &Method::POST,
        path: "/api/products/7?full=1",
        headers: &request,
        body: b"{\"q\":1}",
        legacy: &legacy,
        candidate: &candidate,
        differences: &differences,
        total_differences: 1,
        secret_headers: &secret,
    })
}

/// Writes `mismatches` through a corpus and waits until the writer is done.
async fn write_all(settings: CorpusSettings, mismatches: &[Mismatch]) -> CorpusCounts {
    let tasks = TaskTracker::new();
    let corpus = Corpus::start(settings, &tasks);
    for m in mismatches {
        corpus.offer(m);
        // Let the writer keep up: this test is about the cap, not the queue.
        tokio::task::yield_now().await;
    }
    let route = mismatches
        .first()
        .map(|m| m.route.clone())
        .unwrap_or_default();
    let tally = corpus.tally.clone();
    drop(corpus);
    tasks.close();
    tasks.wait().await;
    lock(&tally.0).get(&route).cloned().unwrap_or_default()
}

fn folder_bytes(folder: &Path) -> u64 {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn folder_text(folder: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[tokio::test]
async fn secrets_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let settings = CorpusSettings::new(dir.path().join("diffs"), 1 << 20);
    let counts = write_all(settings, &[mismatch("products", "c1", 10)]).await;
    assert_eq!(counts.captured, 1);
    let text = folder_text(&dir.path().join("diffs"));
    for secret in [
        "auth-secret",
        "proxy-secret",
        "cookie-secret",
        "set-header-secret",
        "set-cookie-secret",
        "theme=dark",
    ] {
        assert!(!text.contains(secret), "`{secret}` leaked into:\n{text}");
    }
    assert!(
        text.contains("[\"authorization\",\"[redacted]\"]"),
        "{text}"
    );
    assert!(
        text.contains("[\"x-candidate-key\",\"[redacted]\"]"),
        "{text}"
    );
    // set-cookie keeps what diff compares: the cookie's name and attributes.
    assert!(text.contains("sid=[redacted]; Path=/; HttpOnly"), "{text}");
    assert!(text.contains("[\"accept\",\"application/json\"]"), "{text}");
}

#[tokio::test]
async fn json_lines_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_owned();
    let written = [
        mismatch("products", "c1", 10),
        mismatch("products", "c2", 10),
    ];
    let other = mismatch("feeds", "c3", 10);
    let tasks = TaskTracker::new();
    let corpus = Corpus::start(CorpusSettings::new(folder.clone(), 1 << 20), &tasks);
    for m in written.iter().chain([&other]) {
        corpus.offer(m);
    }
    drop(corpus);
    tasks.close();
    tasks.wait().await;

    let loaded = read_route(&folder, "products").unwrap();
    assert_eq!(loaded.unreadable, 0);
    assert_eq!(loaded.mismatches, written);
    let first = &loaded.mismatches[0];
    assert_eq!(first.request.path, "/api/products/7?full=1");
    assert_eq!(first.request.body.encoding, BodyEncoding::Utf8);
    // A binary body comes back byte for byte.
    assert_eq!(first.candidate.body.encoding, BodyEncoding::Base64);
    assert_eq!(&first.candidate.observed().unwrap().body[..], &[0xff, 0x00]);
    // Redacted request headers are not sent again; the others are.
    let again = first.replay_headers();
    assert!(again.get("authorization").is_none());
    assert!(again.get("cookie").is_none());
    assert_eq!(again["accept"], "application/json");
    assert_eq!(read_route(&folder, "feeds").unwrap().mismatches, [other]);

    // A line cut by a crash is skipped and counted.
    let segment = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("products."))
        .unwrap();
    let mut text = std::fs::read_to_string(&segment).unwrap();
    text.push_str("{\"route\":\"prod");
    std::fs::write(&segment, text).unwrap();
    let loaded = read_route(&folder, "products").unwrap();
    assert_eq!((loaded.mismatches.len(), loaded.unreadable), (2, 1));
}

#[tokio::test]
async fn the_cap_rotates_out_the_oldest_segments_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_owned();
    let settings = CorpusSettings {
        folder: folder.clone(),
        max: 16 * 1024,
        segment: 4 * 1024,
    };
    let all: Vec<Mismatch> = (0..100)
        .map(|i| mismatch("products", &format!("c{i}"), 500))
        .collect();
    let counts = write_all(settings, &all).await;

    assert_eq!(counts.captured, 100);
    assert!(
        folder_bytes(&folder) <= 16 * 1024,
        "{}",
        folder_bytes(&folder)
    );
    let kept = read_route(&folder, "products").unwrap().mismatches;
    let rotated = counts.dropped.get("rotated_out").copied().unwrap_or(0);
    assert!(rotated > 0, "{counts:?}");
    assert_eq!(rotated + kept.len() as u64, 100, "{counts:?}");
    // What is left is the newest, in order.
    assert_eq!(kept.last().map(|m| m.correlation.as_str()), Some("c99"));
    assert!(!folder.join("products.00000001.jsonl").exists());
}

#[tokio::test]
async fn an_earlier_runs_segments_count_and_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_owned();
    let old = serde_json::to_string(&mismatch("products", "old", 2000)).unwrap();
    let old_segment = folder.join("products.00000007.jsonl");
    std::fs::write(&old_segment, format!("{old}\n{old}\n{old}\n")).unwrap();
    std::fs::write(folder.join("notes.txt"), "not a segment").unwrap();
    let settings = CorpusSettings {
        folder: folder.clone(),
        max: 8 * 1024,
        segment: 4 * 1024,
    };
    let counts = write_all(settings, &[mismatch("products", "new", 10)]).await;
    assert!(!old_segment.exists());
    assert_eq!(counts.dropped.get("rotated_out"), Some(&3), "{counts:?}");
    // New segments are numbered after the old ones, so age order holds across runs.
    assert!(folder.join("products.00000008.jsonl").exists());
    assert!(folder.join("notes.txt").exists());
}

#[tokio::test]
async fn a_capture_larger_than_the_cap_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let settings = CorpusSettings {
        folder: dir.path().to_owned(),
        max: 1024,
        segment: 1024,
    };
    let counts = write_all(settings, &[mismatch("products", "big", 4096)]).await;
    assert_eq!(counts.captured, 0);
    assert_eq!(counts.dropped.get("too_large"), Some(&1));
}

#[tokio::test]
async fn an_unwritable_folder_costs_captures_not_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "a file where the folder should be").unwrap();
    let settings = CorpusSettings::new(blocker.join("diffs"), 1 << 20);
    let counts = write_all(settings, &[mismatch("products", "a", 1)]).await;
    assert_eq!(counts.captured, 0);
    assert_eq!(counts.dropped.get("write_failed"), Some(&1));
}

#[test]
fn bodies_are_capped_at_a_character_boundary() {
    let mut text = "a".repeat(BODY_CAP - 1);
    text.push('é');
    let body = CapturedBody::capture(text.as_bytes());
    assert!(body.truncated);
    assert_eq!(body.encoding, BodyEncoding::Utf8);
    assert_eq!(body.len, BODY_CAP + 1);
    assert_eq!(body.data.len(), BODY_CAP - 1);
    let small = CapturedBody::capture(b"plain");
    assert!(!small.truncated);
    assert_eq!(small.bytes().unwrap(), Bytes::from_static(b"plain"));
}

#[test]
fn segment_names() {
    assert_eq!(
        writer::parse_name("products.00000012.jsonl"),
        Some(("products", 12))
    );
    assert_eq!(writer::parse_name("a-b_c.1.jsonl"), Some(("a-b_c", 1)));
    assert_eq!(writer::parse_name("products.jsonl"), None);
    assert_eq!(writer::parse_name("../x.1.jsonl"), None);
    assert_eq!(writer::parse_name("p.1.json"), None);
}

#[test]
fn settings_from_config() {
    let config = GlobalShadowConfig::default();
    let settings = CorpusSettings::from_config(&config, Path::new("/etc/strangler")).unwrap();
    assert_eq!(settings.folder, Path::new("/etc/strangler/data/diffs"));
    assert_eq!(settings.max, 64 << 20);
    assert_eq!(settings.segment, 4 << 20);
    let off = GlobalShadowConfig {
        corpus_max: crate::config::ByteSize(0),
        ..config
    };
    assert!(CorpusSettings::from_config(&off, Path::new(".")).is_none());
}
