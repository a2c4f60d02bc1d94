//! Isolation: whatever the candidate does, the client gets legacy's answer, unhurried.

use std::collections::BTreeMap;

use system_tests::fake::{self, Behaviour};
use system_tests::findings::{accounted_for, diffs, skipped};
use system_tests::{Legacy, Proxy, raw_client, routes_toml};

use super::{NO_HANG, get, until};

/// What the test checks about the order of the client's and the candidate's events.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Every client answer was complete before the candidate answered (or would have
    /// answered, had the proxy waited) any copy.
    BeforeCandidateAnswers,
    /// Each client answer was complete before the proxy gave up its (never answered) copy.
    BeforeCopyAbandoned,
    /// No ordering to check (the candidate fails at once).
    Unchecked,
}

/// What the comparisons of a case must show.
#[derive(Clone, Copy, Debug)]
enum Finding {
    /// Every copy skipped for this reason.
    Skipped(&'static str),
    /// Every copy compared, each a regression on `/status` (legacy 200, candidate 500).
    StatusRegression,
}

/// Requests sent through the proxy in each isolation case.
const ISOLATION_REQUESTS: usize = 20;

/// 20 requests to a shadow route whose candidate misbehaves as `behaviour`: every client gets
/// the legacy answer, byte for byte as legacy-shim gives it directly, in the `order` required,
/// and `/admin/shadow` shows `finding`.
async fn candidate_cannot_touch_the_client(
    behaviour: Behaviour,
    timeout: &str,
    order: Order,
    finding: Finding,
) {
    let legacy = Legacy::stable().await;
    let candidate = fake::start(behaviour).await;
    let proxy = Proxy::start(&routes_toml(
        &legacy.url(),
        &format!(
            r#"[upstreams.candidate]
url = "{candidate}"

[[routes]]
id = "products"
match = {{ path = "/api/products/{{sku}}", methods = ["GET"] }}
mode = "shadow"
extracted = "candidate"
shadow = {{ timeout = "{timeout}", baseline = 0.0 }}
"#,
            candidate = candidate.url()
        ),
    ))
    .await;
    let client = raw_client();
    let direct = get(
        &client,
        &format!("{}/api/products/RED-CHAIR", legacy.url()),
        &[],
    )
    .await;
    assert_eq!(direct.status, 200);

    let url = format!("{}/api/products/RED-CHAIR", proxy.url());
    let sent = async {
        let mut done = BTreeMap::new();
        for i in 0..ISOLATION_REQUESTS {
            let id = format!("isolation-{i}");
            let got = get(&client, &url, &[("x-request-id", &id)]).await;
            assert_eq!(got.status, direct.status, "request {i} ({behaviour:?})");
            assert_eq!(got.header("content-type"), direct.header("content-type"));
            assert_eq!(
                got.body, direct.body,
                "request {i} ({behaviour:?}): not the legacy answer"
            );
            done.insert(id, got.complete_at);
        }
        done
    };
    let done = tokio::time::timeout(NO_HANG, sent)
        .await
        .unwrap_or_else(|_| panic!("clients still waiting after {NO_HANG:?} ({behaviour:?})"));

    // Every copy reached the candidate: the isolation above was not for want of trying.
    until("every copy to reach the candidate", || {
        candidate.visits().len() >= ISOLATION_REQUESTS
    })
    .await;
    let s = accounted_for(&proxy, "products", ISOLATION_REQUESTS as u64).await;
    match finding {
        Finding::Skipped(reason) => {
            assert_eq!(skipped(&s, reason), ISOLATION_REQUESTS as u64, "{s:#}");
            assert_eq!(s["compared"], 0, "{s:#}");
        }
        Finding::StatusRegression => {
            assert_eq!(s["compared"], ISOLATION_REQUESTS, "{s:#}");
            assert_eq!(s["regression"], ISOLATION_REQUESTS, "{s:#}");
            let records = diffs(&proxy, "route=products&verdict=regression&limit=100").await;
            assert_eq!(records.len(), ISOLATION_REQUESTS, "{records:#?}");
            for record in &records {
                let status = record["differences"]
                    .as_array()
                    .and_then(|d| d.iter().find(|d| d["pointer"] == "/status"))
                    .unwrap_or_else(|| panic!("no /status difference: {record:#}"));
                assert_eq!(status["legacy"], 200, "{record:#}");
                assert_eq!(status["candidate"], 500, "{record:#}");
                assert_eq!(status["noise"], false, "{record:#}");
            }
        }
    }

    let visits = candidate.visits();
    let instant_of = |visit: &fake::Visit| {
        let id = visit
            .header("x-request-id")
            .expect("the copy keeps x-request-id");
        *done
            .get(&id)
            .unwrap_or_else(|| panic!("a copy of a request never sent: {id}"))
    };
    // Each copy carries the request id of a request the test sent.
    visits.iter().for_each(|v| {
        instant_of(v);
    });
    match order {
        Order::BeforeCandidateAnswers => {
            // The last client had its whole answer before the candidate answered even the
            // first copy (a proxy waiting on copies, even only up to the shadow timeout each,
            // would still be sending requests by then).
            let last_client = done.values().max().unwrap();
            let first_answer = visits
                .iter()
                .map(|v| v.answers_at.expect("this candidate answers in the end"))
                .min()
                .unwrap();
            assert!(
                *last_client < first_answer,
                "the clients' answers were complete only after the candidate answered a copy"
            );
        }
        Order::BeforeCopyAbandoned => {
            until("the proxy to give up every copy", || {
                candidate.visits().iter().all(|v| v.client_left.is_some())
            })
            .await;
            for visit in candidate.visits() {
                assert!(
                    instant_of(&visit) < visit.client_left.unwrap(),
                    "{:?}: the client's answer was complete only after the proxy gave up the copy",
                    visit.header("x-request-id")
                );
            }
        }
        Order::Unchecked => {}
    }
    proxy.stop().await;
    legacy.stop().await;
}

#[tokio::test]
async fn a_hanging_candidate_never_delays_the_client() {
    candidate_cannot_touch_the_client(
        Behaviour::Hang,
        "500ms",
        Order::BeforeCopyAbandoned,
        Finding::Skipped("candidate_timeout"),
    )
    .await;
}

#[tokio::test]
async fn a_slow_candidate_never_delays_the_client() {
    candidate_cannot_touch_the_client(
        Behaviour::SlowOk(5000),
        "500ms",
        Order::BeforeCandidateAnswers,
        Finding::Skipped("candidate_timeout"),
    )
    .await;
}

#[tokio::test]
async fn a_candidate_resetting_the_connection_never_fails_the_client() {
    candidate_cannot_touch_the_client(
        Behaviour::Reset,
        "30s",
        Order::Unchecked,
        Finding::Skipped("candidate_error"),
    )
    .await;
}

#[tokio::test]
async fn a_candidate_closing_the_connection_never_fails_the_client() {
    candidate_cannot_touch_the_client(
        Behaviour::CloseImmediately,
        "30s",
        Order::Unchecked,
        Finding::Skipped("candidate_error"),
    )
    .await;
}

#[tokio::test]
async fn a_failing_candidate_never_fails_the_client_and_is_a_status_regression() {
    candidate_cannot_touch_the_client(
        Behaviour::ServerError,
        "30s",
        Order::Unchecked,
        Finding::StatusRegression,
    )
    .await;
}
