//! Replay against in-process candidates: one still buggy, one fixed.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::task::JoinSet;

use super::*;
use crate::shadow::corpus::Exchange;
use crate::shadow::summary::Entry;

/// A captured mismatch: legacy said 4999, the candidate 5000; `generated_at` was noise.
fn mismatch(correlation: &str) -> Mismatch {
    let mut request = http::HeaderMap::new();
    request.insert("authorization", HeaderValue::from_static("Bearer secret"));
    request.insert("cookie", HeaderValue::from_static("sid=secret"));
    request.insert("x-candidate-key", HeaderValue::from_static("old-key"));
    request.insert("content-type", HeaderValue::from_static("application/json"));
    request.insert("content-length", HeaderValue::from_static("9"));
    request.insert("connection", HeaderValue::from_static("keep-alive"));
    let mut json = http::HeaderMap::new();
    json.insert("content-type", HeaderValue::from_static("application/json"));
    let legacy = Observed {
        status: 200,
        headers: json.clone(),
        body: Bytes::from_static(br#"{"id":7,"price_cents":4999,"generated_at":"t1"}"#),
    };
    let candidate = Observed {
        status: 200,
        headers: json,
        body: Bytes::from_static(br#"{"id":7,"price_cents":5000,"generated_at":"t2"}"#),
    };
    let differences = [
        Entry {
            pointer: "/body/price_cents".into(),
            legacy: Some(4999.into()),
            candidate: Some(5000.into()),
            noise: false,
        },
        Entry {
            pointer: "/body/generated_at".into(),
            legacy: Some("t1".into()),
            candidate: Some("t2".into()),
            noise: true,
        },
    ];
    Mismatch::new(&Exchange {
        route: "products",
        correlation,
        at: "2025-01-01T00:00:00.000Z",
        method: &Method::POST,
        path: "/api/products/7?full=1",
        headers: &request,
        body: br#"{"qty":1}"#,
        legacy: &legacy,
        candidate: &candidate,
        differences: &differences,
        total_differences: 2,
        secret_headers: &["x-candidate-key".to_owned()],
    })
}

/// A candidate answering `price` for product 7, refusing requests that carry a redacted
/// header, lack the route's own key, or lost their body.
async fn candidate(tasks: &mut JoinSet<()>, price: u32) -> String {
    let app = Router::new().route(
        "/prefix/api/products/7",
        post(move |headers: HeaderMap, body: Bytes| async move {
            let status = if headers.values().any(|v| v == "[redacted]") {
                StatusCode::BAD_REQUEST
            } else if headers
                .get("x-candidate-key")
                .is_none_or(|v| v != "new-key")
            {
                StatusCode::UNAUTHORIZED
            } else if &body[..] != br#"{"qty":1}"# {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let json = format!(r#"{{"id":7,"price_cents":{price},"generated_at":"t3"}}"#);
            (status, [(header::CONTENT_TYPE, "application/json")], json)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tasks.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/prefix/")
}

fn plan(to: &str) -> Plan {
    Plan {
        rules: DiffRules::default(),
        set_headers: [("x-candidate-key".to_owned(), "new-key".to_owned())].into(),
        base: base_url(to).unwrap(),
    }
}

#[tokio::test]
async fn fixed_resolves_buggy_does_not() {
    let mut tasks = JoinSet::new();
    let fixed = candidate(&mut tasks, 4999).await;
    let buggy = candidate(&mut tasks, 5001).await;
    let client = client();
    let m = mismatch("c1");

    let fixed_plan = plan(&fixed);
    // generated_at differs again, but it was learned noise when captured.
    assert_eq!(
        replay_one(&client, &fixed_plan, &m).await,
        Outcome::Resolved(Verdict::Noise)
    );

    let buggy_plan = plan(&buggy);
    let outcome = replay_one(&client, &buggy_plan, &m).await;
    let Outcome::Unresolved { differences, total } = &outcome else {
        panic!("expected unresolved, got {outcome:?}");
    };
    assert_eq!(*total, 1);
    assert_eq!(differences[0].pointer, "/body/price_cents");
    assert_eq!(differences[0].candidate, Some(5001.into()));
    let text = describe(&m, &outcome);
    assert!(
        text.starts_with("unresolved   POST /api/products/7?full=1  regression"),
        "{text}"
    );
    assert!(
        text.contains("      /body/price_cents   legacy 4999   candidate 5001\n"),
        "{text}"
    );
    assert!(!text.contains("generated_at"), "{text}");
}

#[tokio::test]
async fn an_unreachable_candidate_fails_the_mismatch() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outcome = replay_one(&client(), &plan(&format!("http://{addr}")), &mismatch("c")).await;
    let Outcome::Failed(why) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        why.starts_with(&format!("cannot reach http://{addr}")),
        "{why}"
    );
}

#[test]
fn judged_like_the_proxy() {
    let m = mismatch("c");
    let answer = |body: &'static [u8]| Observed {
        status: 200,
        headers: m.legacy.observed().unwrap().headers,
        body: Bytes::from_static(body),
    };
    let same = answer(br#"{"id":7,"price_cents":4999,"generated_at":"t1"}"#);
    assert_eq!(
        judge(&m, &same, &DiffRules::default()),
        Outcome::Resolved(Verdict::Equal)
    );
    // A difference at a pointer that was not noise when captured is a regression.
    let new_field = answer(br#"{"id":8,"price_cents":4999,"generated_at":"t1"}"#);
    assert!(matches!(
        judge(&m, &new_field, &DiffRules::default()),
        Outcome::Unresolved { total: 1, .. }
    ));
    // An ignore rule from the config counts.
    let ignore_id = crate::config::DiffConfig {
        ignore: vec!["/body/id".into()],
        ..crate::config::DiffConfig::default()
    };
    assert_eq!(
        judge(&m, &new_field, &DiffRules::new(&ignore_id).unwrap()),
        Outcome::Resolved(Verdict::Noise)
    );
}

#[test]
fn truncated_captures_are_not_judged() {
    let mut m = mismatch("c");
    m.legacy.body.truncated = true;
    let outcome = judge(&m, &m.candidate.observed().unwrap(), &DiffRules::default());
    assert!(matches!(outcome, Outcome::Failed(ref why) if why.starts_with("cannot judge")));
}

#[test]
fn target_urls() {
    assert_eq!(
        base_url("http://127.0.0.1:9000").unwrap(),
        "http://127.0.0.1:9000"
    );
    assert_eq!(base_url("http://h:1/app/").unwrap(), "http://h:1/app");
    assert!(base_url("https://h").is_err());
    assert!(base_url("not a url").is_err());
}

#[test]
fn the_plan_comes_from_the_route() {
    let text = r#"default_upstream = "legacy"
[upstreams.legacy]
url = "http://127.0.0.1:1"
[upstreams.new]
url = "http://127.0.0.1:2"
[[routes]]
id = "products"
match = { path = "/api/products/*" }
mode = "shadow"
extracted = "new"
shadow = { set_headers = { x-candidate-key = "k" } }
diff = { ignore = ["/body/id"] }
"#;
    let config = crate::config::from_toml_str(text, "t.toml").unwrap();
    let plan = Plan::new(&config, "products", "http://127.0.0.1:9").unwrap();
    assert_eq!(plan.set_headers["x-candidate-key"], "k");
    let err = Plan::new(&config, "nope", "http://127.0.0.1:9")
        .unwrap_err()
        .to_string();
    assert!(err.contains("known routes: products"), "{err}");
}
