//! Reloading routes.toml while traffic flows: through the file watcher (in-place writes and
//! editor-style write-to-temp-and-rename), through `Handle::reload`, and through
//! `POST /admin/reload`. A reload never fails a request, an invalid file never replaces the
//! running configuration, and once a reload is live the next requests follow it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strangler::reload::Outcome;
use system_tests::named::{self, Named};
use system_tests::wait::{Readyz, eventually, readyz};
use system_tests::{Proxy, raw_client, routes_toml};

/// How long one reload may take to show in `/readyz`.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);
/// Upper bound on the client loops, whatever happens to the test.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);
/// Number of rewrites of routes.toml in the load test (issue #9 asks for 100 reloads under load).
const REWRITES: usize = 100;

/// Three named upstreams: `legacy` (the default) answers "L", `a` answers "A", `b` "B".
struct Upstreams {
    legacy: Named,
    a: Named,
    b: Named,
}

impl Upstreams {
    async fn start() -> Self {
        Self {
            legacy: named::start("L").await,
            a: named::start("A").await,
            b: named::start("B").await,
        }
    }

    /// A routes.toml whose route `flip` (path `/flip`) is `route` (its keys after `match`).
    fn config(&self, route: &str, extra: &str) -> String {
        routes_toml(
            &self.legacy.url(),
            &format!(
                r#"[upstreams.a]
url = "{a}"

[upstreams.b]
url = "{b}"

[[routes]]
id = "flip"
match = {{ path = "/flip" }}
{route}
{extra}"#,
                a = self.a.url(),
                b = self.b.url(),
            ),
        )
    }
}

/// One version of routes.toml written during the load test.
struct Version {
    text: String,
    /// The body `/flip` answers with while this version is live; `None` for an invalid file.
    answer: Option<&'static str>,
}

/// The valid versions, in the order they cycle: each differs from the one before it, so each
/// write is a real change (a new generation), and they alternate between the upstreams.
fn valid_versions(u: &Upstreams) -> Vec<Version> {
    let v = |route: &str, extra: &str, answer| Version {
        text: u.config(route, extra),
        answer: Some(answer),
    };
    vec![
        v("mode = \"legacy\"\nlegacy = \"a\"", "", "A"),
        v(
            "mode = \"extracted\"\nlegacy = \"a\"\nextracted = \"b\"",
            "",
            "B",
        ),
        v(
            "mode = \"shadow\"\nlegacy = \"a\"\nextracted = \"b\"",
            "",
            "A",
        ),
        v(
            "mode = \"canary\"\nlegacy = \"a\"\nextracted = \"b\"\ncanary = { percent = 100 }",
            "",
            "B",
        ),
        v(
            "mode = \"legacy\"\nlegacy = \"a\"",
            "\n[[routes]]\nid = \"added\"\nmatch = { path = \"/added/*\" }\nmode = \"extracted\"\nextracted = \"b\"\n",
            "A",
        ),
    ]
}

/// Invalid versions: a syntax error, an unknown upstream, a bad mode.
fn invalid_versions(u: &Upstreams) -> Vec<Version> {
    let v = |text: String| Version { text, answer: None };
    vec![
        v(u.config(
            "mode = \"extracted\"\nlegacy = \"a\"\nextracted = \"b\"",
            "",
        )
        .replace("[[routes]]", "[[routes]")),
        v(u.config(
            "mode = \"extracted\"\nlegacy = \"a\"\nextracted = \"c\"",
            "",
        )),
        v(u.config("mode = \"sideways\"\nlegacy = \"a\"\nextracted = \"b\"", "")),
    ]
}

/// Replaces `path`'s content, as an editor saving in place or one writing a temp file and
/// renaming it over the original.
fn write_config(path: &Path, text: &str, via_rename: bool) {
    if via_rename {
        let temp = path.with_file_name(".routes.toml.swp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, path).unwrap();
    } else {
        std::fs::write(path, text).unwrap();
    }
}

/// One request of the background clients.
struct Observation {
    sent: Instant,
    done: Instant,
    /// `Ok((status, body))`, or the transport error.
    outcome: Result<(u16, String), String>,
}

/// Sends `GET url` back to back until `stop` (or [`CLIENT_DEADLINE`]), recording each answer.
async fn keep_asking(
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
) -> Vec<Observation> {
    let give_up = Instant::now() + CLIENT_DEADLINE;
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < give_up {
        let sent = Instant::now();
        let outcome = match client.get(&url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response
                    .text()
                    .await
                    .map(|body| (status, body))
                    .map_err(|e| format!("body: {e}"))
            }
            Err(e) => Err(format!("request: {e}")),
        };
        seen.push(Observation {
            sent,
            done: Instant::now(),
            outcome,
        });
    }
    seen
}

/// When a valid version may have been the live one: from just before its file was written to
/// the moment the next valid version was seen live.
struct Window {
    answer: &'static str,
    from: Instant,
    until: Option<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_never_fails_a_request() {
    let u = Upstreams::start().await;
    let valid = valid_versions(&u);
    let invalid = invalid_versions(&u);
    let mut windows = vec![Window {
        answer: valid[0].answer.unwrap(),
        from: Instant::now(),
        until: None,
    }];
    let proxy = Proxy::start(&valid[0].text).await;
    let admin = raw_client();
    let path = proxy.config_path();
    let url = format!("{}/flip", proxy.url());

    // Two clients: one reusing keep-alive connections (a reload reaches them at their next
    // request), one opening a connection per request.
    let stop = Arc::new(AtomicBool::new(false));
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let clients = [raw_client(), fresh]
        .map(|client| tokio::spawn(keep_asking(client, url.clone(), stop.clone())));

    let mut state = readyz(&admin, &proxy.admin_url()).await.expect("readyz");
    assert_eq!(state.generation, 1);
    let mut live = 0usize;
    let mut settled_wrong = Vec::new();
    for i in 0..REWRITES {
        let via_rename = i % 4 < 2;
        let before = state;
        if i % 2 == 0 {
            let next = (i / 2 + 1) % valid.len();
            let from = Instant::now();
            write_config(&path, &valid[next].text, via_rename);
            state = eventually(
                &format!("write {i} (valid, version {next}) to be applied"),
                RELOAD_DEADLINE,
                || async {
                    readyz(&admin, &proxy.admin_url())
                        .await
                        .filter(|r| r.generation > before.generation)
                },
            )
            .await;
            assert_eq!(
                state.generation,
                before.generation + 1,
                "write {i}: one write, one new generation"
            );
            let now = Instant::now();
            windows.last_mut().unwrap().until = Some(now);
            windows.push(Window {
                answer: valid[next].answer.unwrap(),
                from,
                until: None,
            });
            live = next;
        } else {
            let bad = &invalid[(i / 2) % invalid.len()];
            write_config(&path, &bad.text, via_rename);
            state = eventually(
                &format!("write {i} (invalid) to be rejected"),
                RELOAD_DEADLINE,
                || async {
                    readyz(&admin, &proxy.admin_url())
                        .await
                        .filter(|r| r.rejected > before.rejected)
                },
            )
            .await;
            assert_eq!(
                state.generation, before.generation,
                "write {i}: an invalid file changed the generation"
            );
        }
        // Settled: the next request follows the live version.
        let answer = admin.get(&url).send().await.unwrap().text().await.unwrap();
        if answer != valid[live].answer.unwrap() {
            settled_wrong.push(format!(
                "after write {i}: expected {:?}, got {answer:?}",
                valid[live].answer.unwrap()
            ));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut observations = Vec::new();
    for client in clients {
        observations.extend(client.await.unwrap());
    }

    let failed: Vec<String> = observations
        .iter()
        .filter_map(|o| match &o.outcome {
            Ok((200, body)) if body == "A" || body == "B" => None,
            Ok((status, body)) => Some(format!("{status} {body:?}")),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during reloads, e.g. {:?}",
        failed.len(),
        observations.len(),
        &failed[..failed.len().min(10)]
    );

    let out_of_time: Vec<String> = observations
        .iter()
        .filter_map(|o| {
            let Ok((_, body)) = &o.outcome else {
                return None;
            };
            let possible: Vec<&str> = windows
                .iter()
                .filter(|w| w.from <= o.done && w.until.is_none_or(|until| o.sent <= until))
                .map(|w| w.answer)
                .collect();
            (!possible.contains(&body.as_str()))
                .then(|| format!("answered {body:?} when only {possible:?} could be live"))
        })
        .collect();
    assert!(
        out_of_time.is_empty(),
        "{} answers came from a version that was not live: {:?}",
        out_of_time.len(),
        &out_of_time[..out_of_time.len().min(10)]
    );
    assert!(
        settled_wrong.is_empty(),
        "after a reload settled, requests went elsewhere: {settled_wrong:?}"
    );
    assert!(
        observations.len() >= REWRITES,
        "the clients made only {} requests",
        observations.len()
    );

    let end = readyz(&admin, &proxy.admin_url()).await.unwrap();
    let valid_writes = REWRITES.div_ceil(2) as u64;
    assert_eq!(end.generation, 1 + valid_writes, "{end:?}");
    assert_eq!(end.applied, valid_writes, "{end:?}");
    assert!(end.rejected >= (REWRITES / 2) as u64, "{end:?}");
    assert_eq!(
        u.legacy.hits(),
        0,
        "/flip never goes to the default upstream"
    );
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
        + 1
}

async fn flip_answer(proxy: &Proxy) -> String {
    raw_client()
        .get(format!("{}/flip", proxy.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn handle_reload_applies_rejects_and_reports_unchanged() {
    let u = Upstreams::start().await;
    let valid = valid_versions(&u);
    let proxy = Proxy::start(&valid[0].text).await;
    assert_eq!(flip_answer(&proxy).await, "A");

    // Nothing changed on disk.
    assert!(matches!(proxy.handle.reload().await, Outcome::Unchanged));

    // A valid change. The file watcher may apply it first; then this call finds it unchanged.
    std::fs::write(proxy.config_path(), &valid[1].text).unwrap();
    match proxy.handle.reload().await {
        Outcome::Applied { generation } => assert_eq!(generation, 2),
        Outcome::Unchanged => assert_eq!(
            proxy.handle.shared().snapshot().generation,
            2,
            "unchanged, yet not applied by the watcher"
        ),
        Outcome::Rejected(diags) => panic!("a valid file was rejected: {diags}"),
    }
    assert_eq!(flip_answer(&proxy).await, "B");

    // An invalid change: rejected with file:line, and the running configuration stays.
    let bad = u.config("mode = \"sideways\"\nlegacy = \"a\"\nextracted = \"b\"", "");
    let line = line_of(&bad, "sideways");
    std::fs::write(proxy.config_path(), &bad).unwrap();
    match proxy.handle.reload().await {
        Outcome::Rejected(diags) => {
            let text = diags.to_string();
            assert!(
                text.contains(&format!("routes.toml:{line}:")),
                "diagnostics should point at line {line}: {text}"
            );
            assert!(text.contains("sideways"), "{text}");
        }
        other => panic!("an invalid file was not rejected: {other:?}"),
    }
    assert_eq!(proxy.handle.shared().snapshot().generation, 2);
    assert_eq!(flip_answer(&proxy).await, "B");

    // Fixing the file recovers.
    std::fs::write(proxy.config_path(), &valid[2].text).unwrap();
    match proxy.handle.reload().await {
        Outcome::Applied { generation } => assert_eq!(generation, 3),
        Outcome::Unchanged => assert_eq!(proxy.handle.shared().snapshot().generation, 3),
        Outcome::Rejected(diags) => panic!("a valid file was rejected: {diags}"),
    }
    assert_eq!(flip_answer(&proxy).await, "A");
    proxy.stop().await;
}

#[tokio::test]
async fn admin_reload_with_token() {
    const TOKEN: &str = "reload-token";
    let u = Upstreams::start().await;
    let valid = valid_versions(&u);
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let with_token = |text: &str| {
        text.replace(
            "[admin]\naddress = \"127.0.0.1:0\"\n",
            &format!(
                "[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
                token_file.display()
            ),
        )
    };
    let proxy = Proxy::start(&with_token(&valid[0].text)).await;
    let client = raw_client();
    let reload_url = format!("{}/admin/reload", proxy.admin_url());
    let post = || {
        client
            .post(&reload_url)
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
    };
    let body = |r: reqwest::Response| async move {
        serde_json::from_slice::<serde_json::Value>(&r.bytes().await.unwrap()).unwrap()
    };

    let refused = client.post(&reload_url).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    let same = post().await.unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(body(same).await["result"], "unchanged");

    std::fs::write(proxy.config_path(), with_token(&valid[1].text)).unwrap();
    let applied = post().await.unwrap();
    assert_eq!(applied.status(), 200);
    let applied = body(applied).await;
    match applied["result"].as_str() {
        Some("applied") => assert_eq!(applied["generation"], 2),
        // The file watcher got there first.
        Some("unchanged") => {}
        _ => panic!("unexpected answer: {applied}"),
    }
    let state = readyz(&client, &proxy.admin_url()).await.unwrap();
    assert_eq!(state.generation, 2, "{state:?}");
    assert_eq!(flip_answer(&proxy).await, "B");

    let bad = with_token(&u.config(
        "mode = \"extracted\"\nlegacy = \"a\"\nextracted = \"c\"",
        "",
    ));
    let line = line_of(&bad, "extracted = \"c\"");
    std::fs::write(proxy.config_path(), &bad).unwrap();
    let rejected = post().await.unwrap();
    assert_eq!(rejected.status(), 422);
    let rejected = body(rejected).await;
    assert_eq!(rejected["result"], "rejected");
    let errors = rejected["errors"].to_string();
    assert!(
        errors.contains(&format!("routes.toml:{line}:")),
        "errors should point at line {line}: {errors}"
    );
    assert!(
        errors.contains("\\\"c\\\""),
        "errors should name the unknown upstream: {errors}"
    );
    let state: Readyz = readyz(&client, &proxy.admin_url()).await.unwrap();
    assert_eq!(state.generation, 2, "{state:?}");
    assert!(state.rejected >= 1, "{state:?}");
    assert_eq!(flip_answer(&proxy).await, "B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_on_the_configuration_they_started_with() {
    let u = Upstreams::start().await;
    let slow = system_tests::fake::start(system_tests::fake::Behaviour::SlowOk(1000)).await;
    let with_slow = |route: &str| {
        u.config(
            route,
            &format!("\n[upstreams.slow]\nurl = \"{}\"\n", slow.url()),
        )
    };
    let proxy = Proxy::start(&with_slow("mode = \"legacy\"\nlegacy = \"slow\"")).await;
    let admin = raw_client();
    let request = tokio::spawn(raw_client().get(format!("{}/flip", proxy.url())).send());
    eventually(
        "the request to reach the slow upstream",
        RELOAD_DEADLINE,
        || async { (slow.count() >= 1).then_some(()) },
    )
    .await;

    // The new version no longer has the upstream the request is waiting on.
    std::fs::write(
        proxy.config_path(),
        u.config("mode = \"legacy\"\nlegacy = \"b\"", ""),
    )
    .unwrap();
    eventually("the reload to be applied", RELOAD_DEADLINE, || async {
        readyz(&admin, &proxy.admin_url())
            .await
            .filter(|r| r.generation == 2)
    })
    .await;
    assert_eq!(
        flip_answer(&proxy).await,
        "B",
        "new requests follow the reload"
    );

    let response = request
        .await
        .unwrap()
        .expect("the in-flight request failed across the reload");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slow");
    assert_eq!(slow.count(), 1);
}

#[tokio::test]
async fn a_deleted_config_file_keeps_the_running_configuration() {
    let u = Upstreams::start().await;
    let valid = valid_versions(&u);
    let proxy = Proxy::start(&valid[1].text).await;
    let admin = raw_client();
    let path = proxy.config_path();
    assert_eq!(flip_answer(&proxy).await, "B");

    // Some editors and deploy tools remove the file before writing the new one.
    std::fs::remove_file(&path).unwrap();
    let state = eventually(
        "the missing file to be rejected",
        RELOAD_DEADLINE,
        || async {
            readyz(&admin, &proxy.admin_url())
                .await
                .filter(|r| r.rejected >= 1)
        },
    )
    .await;
    assert_eq!(state.generation, 1, "{state:?}");
    assert_eq!(flip_answer(&proxy).await, "B");

    std::fs::write(&path, &valid[2].text).unwrap();
    eventually(
        "the recreated file to be applied",
        RELOAD_DEADLINE,
        || async {
            readyz(&admin, &proxy.admin_url())
                .await
                .filter(|r| r.generation == 2)
        },
    )
    .await;
    assert_eq!(flip_answer(&proxy).await, "A");
}

#[tokio::test]
async fn a_change_right_after_start_is_applied() {
    let u = Upstreams::start().await;
    let valid = valid_versions(&u);
    let proxy = Proxy::start(&valid[0].text).await;
    // `start` returned: the proxy is up, so a change written now must not be missed (a
    // deploy script running `strangler flip` right after `strangler run` does this).
    std::fs::write(proxy.config_path(), &valid[1].text).unwrap();
    let admin = raw_client();
    eventually(
        "a change made right after start to be applied",
        RELOAD_DEADLINE,
        || async {
            readyz(&admin, &proxy.admin_url())
                .await
                .filter(|r| r.generation == 2)
        },
    )
    .await;
    assert_eq!(flip_answer(&proxy).await, "B");
}
