//! The `strangler` command line as users run it: `check` on broken files (exit 1, every
//! problem printed with `routes.toml:LINE` and what to do), `routes --explain`, and `flip`
//! (comments kept, an invalid result never written, a running proxy applies it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use system_tests::wait::{eventually, readyz};
use system_tests::{Proxy, named, raw_client, routes_toml, strangler_bin};

#[path = "cli/broken.rs"]
mod broken;

use broken::{CASES, Case, HEAD};

/// The demo configuration at the top of the workspace.
fn demo_routes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("routes.toml")
}

fn strangler(args: &[&str]) -> Output {
    Command::new(strangler_bin())
        .args(args)
        .output()
        .expect("run strangler")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// === check ===

/// Lines (from 1) ending in `# E`, once per marker on the line.
fn marked_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .flat_map(|(i, line)| std::iter::repeat_n(i + 1, line.matches("# E").count()))
        .collect()
}

/// Checks one case; returns what went wrong, if anything.
fn run_case(dir: &Path, case: &Case) -> Option<String> {
    let folder = dir.join(case.name.replace(' ', "-"));
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("routes.toml");
    let body = if case.whole {
        case.text.to_owned()
    } else {
        format!("{HEAD}{}", case.text)
    };
    std::fs::write(&file, &body).unwrap();
    let lines = marked_lines(&body);
    assert_eq!(
        lines.len(),
        case.expect.len(),
        "case `{}` is malformed: one `# E` per expected message",
        case.name
    );

    let out = strangler(&["check", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(1) {
        problems.push(format!("exit code {:?}, expected 1", out.status.code()));
    }
    // One line per diagnostic, then the summary.
    let diagnostics: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("routes.toml:") && !l.ends_with("error(s)"))
        .collect();
    if diagnostics.len() != case.expect.len() {
        problems.push(format!(
            "{} diagnostics printed, expected {}",
            diagnostics.len(),
            case.expect.len()
        ));
    }
    if !stderr.contains(&format!("routes.toml: {} error(s)", case.expect.len())) {
        problems.push(format!(
            "no summary line `routes.toml: {} error(s)`",
            case.expect.len()
        ));
    }
    for (line, message) in lines.iter().zip(case.expect) {
        let at = format!("routes.toml:{line}:");
        if !diagnostics
            .iter()
            .any(|d| d.contains(&at) && d.contains(message))
        {
            problems.push(format!("no diagnostic at `{at}` saying `{message}`"));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "case `{}`: {}\n--- stderr:\n{stderr}--- file:\n{body}",
            case.name,
            problems.join("; ")
        )
    })
}

#[test]
fn check_reports_every_broken_file_with_its_line() {
    assert!(CASES.len() >= 20);
    let dir = tempfile::tempdir().unwrap();
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| run_case(dir.path(), case))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn check_accepts_valid_files() {
    let out = strangler(&["check", demo_routes().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the demo routes.toml is invalid:\n{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(": ok ("),
        "{}",
        text(&out.stdout)
    );

    // The head every broken case shares is itself valid, so each case fails for its own reason.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    std::fs::write(&file, format!("{HEAD}[[routes]]\nid = \"a\"\nmatch = {{ path = \"/a\" }}\nmode = \"shadow\"\nextracted = \"misc\"\n")).unwrap();
    let out = strangler(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn check_of_a_missing_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("routes.toml");
    let out = strangler(&["check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("routes.toml"),
        "{stderr}"
    );
}

// === routes ===

#[test]
fn routes_explain_names_the_chosen_route() {
    let demo = demo_routes();
    let out = strangler(&[
        "routes",
        "--config",
        demo.to_str().unwrap(),
        "--explain",
        "GET",
        "/misc/feed.rss",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("=> route `misc`"), "{stdout}");
    let misc = stdout
        .lines()
        .find(|l| l.contains(" misc "))
        .unwrap_or_else(|| panic!("no line for route misc:\n{stdout}"));
    assert!(misc.contains("chosen"), "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.contains("chosen")).count() == 1,
        "exactly one route is chosen:\n{stdout}"
    );

    // A more specific route wins over the prefix, and the prefix says why it lost.
    let out = strangler(&[
        "routes",
        "--config",
        demo.to_str().unwrap(),
        "--explain",
        "GET",
        "/misc/currency",
    ]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("=> route `currency`"), "{stdout}");

    // Nothing matches: the default upstream answers.
    let out = strangler(&[
        "routes",
        "--config",
        demo.to_str().unwrap(),
        "--explain",
        "GET",
        "/nothing/here",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("default upstream `legacy`"), "{stdout}");

    // The plain listing names every route.
    let out = strangler(&["routes", "--config", demo.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    for id in ["health", "currency", "misc", "api-products", "api"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(id)),
            "route {id} missing from:\n{stdout}"
        );
    }
}

#[test]
fn routes_output_ends_with_a_newline() {
    // Otherwise the shell prompt lands on the last line of the explanation.
    let demo = demo_routes();
    for args in [
        &["routes", "--config", demo.to_str().unwrap()][..],
        &[
            "routes",
            "--config",
            demo.to_str().unwrap(),
            "--explain",
            "GET",
            "/misc/thumbnail",
        ][..],
    ] {
        let out = strangler(args);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            text(&out.stdout).ends_with('\n'),
            "{args:?} printed no final newline: {:?}",
            text(&out.stdout)
        );
    }
}

// === flip ===

/// A copy of the demo routes.toml in a temp folder.
fn demo_copy() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    let original = std::fs::read_to_string(demo_routes()).unwrap();
    std::fs::write(&file, &original).unwrap();
    (dir, file, original)
}

#[test]
fn flip_keeps_comments_and_layout() {
    let (_dir, file, original) = demo_copy();
    let out = strangler(&[
        "flip",
        "currency",
        "canary",
        "--percent",
        "25",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let flipped = std::fs::read_to_string(&file).unwrap();

    for comment in original.lines().filter(|l| l.contains('#')) {
        assert!(
            flipped.lines().any(|l| l == comment),
            "comment line lost: {comment:?}\n{flipped}"
        );
    }
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(flipped.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        original.lines().count(),
        flipped.lines().count(),
        "{flipped}"
    );
    assert_eq!(
        changed,
        [
            ("mode = \"shadow\"", "mode = \"canary\""),
            (
                "canary = { percent = 10, key = \"cookie:session\" }",
                "canary = { percent = 25, key = \"cookie:session\" }"
            )
        ],
        "only the currency route's mode and percent change"
    );
    let check = strangler(&["check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let left: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left.iter()
            .filter(|n| *n != ".strangler-audit.jsonl")
            .collect::<Vec<_>>(),
        ["routes.toml"],
        "flip left files behind"
    );
    let journal = std::fs::read_to_string(file.with_file_name(".strangler-audit.jsonl")).unwrap();
    assert!(
        journal.contains("\"route\":\"currency\""),
        "the flip is in the audit journal: {journal}"
    );
}

#[test]
fn flip_that_would_break_the_file_leaves_it_untouched() {
    let (_dir, file, original) = demo_copy();
    let config = file.to_str().unwrap();
    let refused: &[(&[&str], &str)] = &[
        // `api-carts` has no `extracted` upstream: the result would be invalid.
        (
            &["flip", "api-carts", "shadow", "--config", config],
            "invalid",
        ),
        // Straight from legacy to retired skips the evidence.
        (
            &["flip", "api-carts", "retired", "--config", config],
            "--force",
        ),
        // Canary needs a share, and `health` has no canary table.
        (
            &["flip", "health", "canary", "--config", config],
            "--percent",
        ),
        (
            &[
                "flip",
                "currency",
                "canary",
                "--percent",
                "150",
                "--config",
                config,
            ],
            "150",
        ),
        (
            &["flip", "nope", "shadow", "--config", config],
            "known routes",
        ),
    ];
    for (args, says) in refused {
        let out = strangler(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should say {says:?}: {stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            original,
            "{args:?} changed the file"
        );
    }
    let left: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["routes.toml"], "a refused flip left files behind");
}

#[tokio::test]
async fn flip_is_applied_by_a_running_proxy() {
    let legacy = named::start("L").await;
    let new = named::start("N").await;
    let config = routes_toml(
        &legacy.url(),
        &format!(
            "# the new service\n[upstreams.new]\nurl = \"{}\"\n\n[[routes]]\nid = \"thumb\"   # moving first\nmatch = {{ path = \"/misc/thumbnail\" }}\nmode = \"legacy\"\nextracted = \"new\"\n",
            new.url()
        ),
    );
    let proxy = Proxy::start(&config).await;
    let client = raw_client();
    let url = format!("{}/misc/thumbnail", proxy.url());
    assert_eq!(
        client.get(&url).send().await.unwrap().text().await.unwrap(),
        "L"
    );

    let path = proxy.config_path();
    let out = tokio::process::Command::new(strangler_bin())
        .args([
            "flip",
            "thumb",
            "extracted",
            "--force",
            "--config",
            path.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("# moving first")
    );

    eventually(
        "the flip to be applied",
        Duration::from_secs(10),
        || async {
            readyz(&client, &proxy.admin_url())
                .await
                .filter(|r| r.generation == 2)
        },
    )
    .await;
    let route: serde_json::Value = serde_json::from_slice(
        &client
            .get(format!("{}/admin/routes/thumb", proxy.admin_url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(route["mode"], "extracted");
    assert_eq!(
        client.get(&url).send().await.unwrap().text().await.unwrap(),
        "N"
    );
}
