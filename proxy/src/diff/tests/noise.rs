//! Noise learning: legacy answers that vary on their own, and a candidate with one real bug.

use super::*;

/// The legacy answer to `GET /api/basket/7`: a fresh timestamp and request id every time,
/// and a per-item trace id.
fn basket(seq: u32, second_price: u32) -> Answer {
    let body = json!({
        "generated_at": format!("2026-03-01T10:00:{:02}.{:03}Z", seq % 60, seq * 7 % 1000),
        "request_id": format!("req-{}", seq * 7919),
        "items": [
            {"sku": "A", "price": 10, "trace": format!("t{seq}a")},
            {"sku": "B", "price": second_price, "trace": format!("t{seq}b")},
        ],
        "total": 30,
    });
    json(&body.to_string()).header("set-cookie", &format!("sid={seq}; Path=/"))
}

#[test]
fn learned_noise_separates_timestamps_and_ids_from_a_real_bug() {
    let rules = DiffRules::default();
    let mut baseline = NoiseBaseline::new();

    // Before learning, every difference is a regression.
    let early = compare(&basket(1, 20).0, &basket(2, 20).0, &rules);
    assert_eq!(classify(&early, &baseline).verdict, Verdict::Regression);

    for seq in [10, 20, 30] {
        assert!(baseline.learn(&basket(seq, 20).0, &basket(seq + 1, 20).0, &rules));
    }
    assert_eq!(baseline.samples(), 3);

    // A correct candidate: only noise.
    let fine = compare(&basket(40, 20).0, &basket(41, 20).0, &rules);
    let verdict = classify(&fine, &baseline);
    assert_eq!(verdict.verdict, Verdict::Noise, "{verdict:?}");
    assert_eq!(verdict.noise.len(), fine.total);

    // A candidate that gets the second price wrong.
    let buggy = compare(&basket(50, 20).0, &basket(51, 21).0, &rules);
    let verdict = classify(&buggy, &baseline);
    assert_eq!(verdict.verdict, Verdict::Regression);
    let regressions: Vec<&str> = verdict
        .regressions
        .iter()
        .map(|d| d.pointer.as_str())
        .collect();
    assert_eq!(regressions, ["/body/items/1/price"]);
    let mut noise: Vec<&str> = verdict.noise.iter().map(|d| d.pointer.as_str()).collect();
    noise.sort_unstable();
    assert_eq!(
        noise,
        [
            "/body/generated_at",
            "/body/items/0/trace",
            "/body/items/1/trace",
            "/body/request_id"
        ]
    );
    assert_eq!(verdict.samples, 3);
    assert_eq!(Verdict::Regression.as_str(), "regression");
}

#[test]
fn noise_learned_at_one_index_covers_every_index() {
    let rules = DiffRules::default();
    let mut baseline = NoiseBaseline::new();
    let list = |v: &[&str]| {
        json(&json!({ "rows": v.iter().map(|s| json!({"at": s})).collect::<Vec<_>>() }).to_string())
    };
    baseline.learn(&list(&["a", "x"]).0, &list(&["b", "x"]).0, &rules);
    let got = compare(&list(&["a", "x"]).0, &list(&["a", "y"]).0, &rules);
    assert_eq!(classify(&got, &baseline).verdict, Verdict::Noise);
}

#[test]
fn baseline_refuses_pairs_with_different_statuses_and_whole_bodies() {
    let rules = DiffRules::default();
    let mut baseline = NoiseBaseline::new();
    assert!(!baseline.learn(&json(r#"{"a": 1}"#).0, &json("{}").status(503).0, &rules));
    assert_eq!(baseline.samples(), 0);
    // An HTML page that differs teaches nothing that would cover all body differences.
    assert!(baseline.learn(&html("<p>1</p>").0, &html("<p>2</p>").0, &rules));
    let got = compare(&html("<p>1</p>").0, &html("<p>3</p>").0, &rules);
    assert_eq!(classify(&got, &baseline).verdict, Verdict::Regression);
}

#[test]
fn baseline_is_bounded() {
    let rules = rules("max_differences = 10000");
    let mut baseline = NoiseBaseline::new();
    for round in 0..4 {
        let keys = |v: u32| {
            let map: serde_json::Map<String, Value> = (0..200)
                .map(|i| (format!("id{}", round * 1000 + i), json!(v)))
                .collect();
            json(&Value::Object(map).to_string())
        };
        baseline.learn(&keys(1).0, &keys(2).0, &rules);
    }
    assert_eq!(baseline.shapes.len(), NoiseBaseline::LIMIT);
    assert_eq!(baseline.samples(), 4);
}

#[test]
fn verdicts_cover_unkept_differences_and_ignored_ones() {
    let rules_capped = rules("max_differences = 1");
    let mut baseline = NoiseBaseline::new();
    baseline.learn(
        &json(r#"{"a": 1}"#).0,
        &json(r#"{"a": 2}"#).0,
        &rules_capped,
    );
    // `a` is noise and kept; `b` is not kept but is a regression.
    let got = compare(
        &json(r#"{"a": 1, "b": 1}"#).0,
        &json(r#"{"a": 2, "b": 2}"#).0,
        &rules_capped,
    );
    assert_eq!((got.differences.len(), got.total), (1, 2));
    let verdict = classify(&got, &baseline);
    assert_eq!(verdict.verdict, Verdict::Regression);
    assert!(verdict.regressions.is_empty());

    let equal = compare(&json("{}").0, &json("{}").0, &rules_capped);
    assert_eq!(classify(&equal, &baseline).verdict, Verdict::Equal);
    let ignored = run(
        &json("{}"),
        &json("{}").status(201),
        r#"ignore = ["/status"]"#,
    );
    assert_eq!(classify(&ignored, &baseline).verdict, Verdict::Noise);
}
