//! Sampling: a stable share of users by the route's key, disjoint from the canary share.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use serde_json::Value;
use system_tests::candidate::{Answer, Recorded, Recorder};
use system_tests::findings::{accounted_for, skipped, summary_when};
use system_tests::{Legacy, Proxy, raw_client, routes_toml};

use super::{Got, IN_FLIGHT, NO_HANG, get, reload};

/// Distinct users in the sampling test.
const USERS: usize = 1000;

/// The sampling route: `/misc/health` keyed by the `x-user` header, with `mode` and `sample`.
fn sampling_routes(legacy: &str, candidate: &str, mode: &str, sample: f64) -> String {
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.candidate]
url = "{candidate}"

[[routes]]
id = "health"
match = {{ path = "/misc/health", methods = ["GET"] }}
mode = "{mode}"
extracted = "candidate"
shadow = {{ sample = {sample}, baseline = 0.0 }}
canary = {{ percent = 20, key = "header:x-user" }}
"#
        ),
    )
}

/// Sends one `GET /misc/health` per user (`x-user: user-N`), a few at a time; returns the
/// users whose answer came from the candidate.
async fn every_user_once(proxy: &Proxy, candidate_body: &str) -> BTreeSet<String> {
    let client = raw_client();
    let url = format!("{}/misc/health", proxy.url());
    let answers: Vec<(String, Got)> = tokio::time::timeout(
        NO_HANG,
        futures_util::stream::iter(0..USERS)
            .map(|i| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let user = format!("user-{i}");
                    let got = get(&client, &url, &[("x-user", &user)]).await;
                    (user, got)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect(),
    )
    .await
    .expect("the users' requests did not finish");
    answers
        .into_iter()
        .filter(|(user, got)| {
            assert_eq!(got.status, 200, "{user}");
            got.body == candidate_body
        })
        .map(|(user, _)| user)
        .collect()
}

/// The users of the mirrored copies among `requests`, each user at most once.
fn mirrored_users(requests: &[Recorded]) -> BTreeSet<String> {
    let mut users = BTreeSet::new();
    for copy in requests.iter().filter(|r| r.is_shadow_copy()) {
        let user = copy
            .header("x-user")
            .expect("copies keep x-user")
            .to_owned();
        assert!(users.insert(user.clone()), "{user} was mirrored twice");
    }
    users
}

#[tokio::test]
async fn sampling_is_a_stable_share_of_users_disjoint_from_the_canary_share() {
    let legacy = Legacy::stable().await;
    let candidate_body = "the candidate's health";
    let candidate = Recorder::start(Answer::text(200, candidate_body)).await;
    let proxy = Proxy::start(&sampling_routes(
        &legacy.url(),
        &candidate.url(),
        "shadow",
        0.3,
    ))
    .await;

    // A share of about 30 % of the users is mirrored; nobody is answered by the candidate.
    assert!(every_user_once(&proxy, candidate_body).await.is_empty());
    let s = accounted_for(&proxy, "health", USERS as u64).await;
    let first = mirrored_users(&candidate.requests());
    assert!(
        (250..=350).contains(&first.len()),
        "{} of {USERS} users mirrored at sample 0.3",
        first.len()
    );
    assert_eq!(
        skipped(&s, "sampled_out"),
        (USERS - first.len()) as u64,
        "{s:#}"
    );
    assert_eq!(s["compared"], first.len(), "{s:#}");

    // The same users again: exactly the same ones are mirrored.
    let seen = candidate.count();
    assert!(every_user_once(&proxy, candidate_body).await.is_empty());
    let before = accounted_for(&proxy, "health", 2 * USERS as u64).await;
    let again = mirrored_users(&candidate.requests()[seen..]);
    assert_eq!(
        again.symmetric_difference(&first).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "sampling is not stable per user"
    );

    // Canary 20 % with sample 0.5 on the same route: no user is both answered by the
    // candidate and mirrored.
    reload(
        &proxy,
        &sampling_routes(&legacy.url(), &candidate.url(), "canary", 0.5),
    )
    .await;
    let seen = candidate.count();
    let canary = every_user_once(&proxy, candidate_body).await;
    // Every non-canary user is either mirrored and compared, or sampled out.
    let settled = |s: &Value| {
        let compared = s["compared"].as_u64().unwrap_or(0) - before["compared"].as_u64().unwrap();
        let sampled_out = skipped(s, "sampled_out") - skipped(&before, "sampled_out");
        compared + sampled_out
    };
    let s = summary_when(&proxy, "health", "the non-canary users' copies", |s| {
        settled(s) >= (USERS - canary.len()) as u64
    })
    .await;
    assert_eq!(settled(&s), (USERS - canary.len()) as u64, "{s:#}");
    let phase = candidate.requests()[seen..].to_vec();
    let mirrored = mirrored_users(&phase);
    let served: BTreeSet<String> = phase
        .iter()
        .filter(|r| !r.is_shadow_copy())
        .map(|r| r.header("x-user").unwrap().to_owned())
        .collect();
    assert_eq!(
        served, canary,
        "the candidate's answers went to other users"
    );
    assert!(
        (150..=250).contains(&canary.len()),
        "{} of {USERS} users in a 20 % canary",
        canary.len()
    );
    assert!(
        (450..=550).contains(&mirrored.len()),
        "{} of {USERS} users mirrored at sample 0.5",
        mirrored.len()
    );
    let both: Vec<&String> = canary.intersection(&mirrored).collect();
    assert!(
        both.is_empty(),
        "users both answered by the candidate and mirrored: {both:?}"
    );
    proxy.stop().await;
    legacy.stop().await;
}
