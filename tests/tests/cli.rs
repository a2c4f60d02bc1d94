//! The `strangler` command line as users run it: `check` on broken files (exit 1, every
//! problem printed with `routes.toml:LINE` and what to do), `routes --explain`, and `flip`
//! (comments kept, an invalid result never written, a running proxy applies it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use system_tests::wait::{eventually, readyz};
use system_tests::{Proxy, named, raw_client, routes_toml, strangler_bin};

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

/// What every broken case starts with (12 lines, then an empty line 13).
const HEAD: &str = r#"default_upstream = "legacy"

[listen]
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"

[upstreams.legacy]
url = "http://127.0.0.1:8081"
[upstreams.misc]
url = "http://127.0.0.1:8082"

"#;

/// A broken routes.toml: every line ending in `# E` must be named by one diagnostic (in file
/// order), whose printed text contains the matching entry of `expect`.
struct Case {
    name: &'static str,
    /// Whether `text` is the whole file (otherwise it follows [`HEAD`]).
    whole: bool,
    text: &'static str,
    expect: &'static [&'static str],
}

const fn case(name: &'static str, text: &'static str, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        whole: false,
        text,
        expect,
    }
}

const fn whole(name: &'static str, text: &'static str, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        whole: true,
        text,
        expect,
    }
}

const CASES: &[Case] = &[
    case(
        "syntax error",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = = \"legacy\" # E\n",
        &["invalid TOML"],
    ),
    case(
        "unknown key with a suggestion",
        "[[routes]]\nid = \"a\"\nmtach = { path = \"/a\" } # E\nmode = \"legacy\"\n",
        &["unknown key `mtach`; did you mean `match`?"],
    ),
    case(
        "unknown upstream",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"extracted\"\nextracted = \"mics\" # E\n",
        &["\"mics\" is not defined in [upstreams]; did you mean \"misc\"?"],
    ),
    case(
        "duplicate route id",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"legacy\"\n\n[[routes]]\nid = \"a\" # E\nmatch = { path = \"/b\" }\nmode = \"legacy\"\n",
        &["duplicate route id \"a\": first used by routes[0], at "],
    ),
    case(
        "bad mode",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"shadw\" # E\n",
        &["unknown mode \"shadw\"; use one of legacy, shadow, canary, extracted, retired"],
    ),
    case(
        "canary without extracted",
        "[[routes]] # E\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\ncanary = { percent = 10 }\n",
        &["mode `canary` needs `extracted`"],
    ),
    case(
        "canary mode without a canary table",
        "[[routes]] # E\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\n",
        &["mode `canary` needs a `canary` table"],
    ),
    case(
        "percent 150",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\ncanary = { percent = 150 } # E\n",
        &["percent 150 is out of range; use 0 to 100"],
    ),
    case(
        "sample 2.0",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"shadow\"\nextracted = \"misc\"\nshadow = { sample = 2.0 } # E\n",
        &["sample 2 is out of range; use a share from 0.0 to 1.0"],
    ),
    case(
        "bad path template",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a/{1x}\" } # E\nmode = \"legacy\"\n",
        &["parameter name `1x` in \"/a/{1x}\" is not an identifier"],
    ),
    case(
        "path without a leading slash",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"misc/*\" } # E\nmode = \"legacy\"\n",
        &["must start with `/`"],
    ),
    case(
        "lowercase method",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\", methods = [\"get\"] } # E\nmode = \"legacy\"\n",
        &["method \"get\" must be upper-case; write \"GET\""],
    ),
    case(
        "bad URL",
        "[upstreams.new]\nurl = \"http//nohost\" # E\n",
        &["\"http//nohost\" is not a URL"],
    ),
    case(
        "https upstream",
        "[upstreams.new]\nurl = \"https://10.0.0.1:443\" # E\n",
        &["https upstreams are not supported"],
    ),
    case(
        "overlapping routes of equal specificity",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a/{x}\" }\nmode = \"legacy\"\n\n[[routes]]\nid = \"b\"\nmatch = { path = \"/a/{y}\" } # E\nmode = \"legacy\"\n",
        &["routes `b` and `a` (routes[0]) are equally specific"],
    ),
    case(
        "bad canary key",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\ncanary = { percent = 10, key = \"session\" } # E\n",
        &["invalid canary key \"session\"; use ip, request_id, header:NAME or cookie:NAME"],
    ),
    whole(
        "bad listen address",
        "default_upstream = \"legacy\"\n\n[listen]\naddress = \"localhost:80\" # E\n\n[upstreams.legacy]\nurl = \"http://127.0.0.1:8081\"\n",
        &["\"localhost:80\" is not a socket address"],
    ),
    whole(
        "missing default_upstream",
        "[listen] # E\naddress = \"127.0.0.1:0\"\n\n[upstreams.legacy]\nurl = \"http://127.0.0.1:8081\"\n",
        &["missing required key `default_upstream`"],
    ),
    whole(
        "top-level key after a table",
        "[upstreams.legacy]\nurl = \"http://127.0.0.1:8081\"\ndefault_upstream = \"legacy\" # E\n",
        &["move it above the first [table]"],
    ),
    case(
        "type error",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\ncanary = { percent = \"ten\" } # E\n",
        &["expected a number, found the string \"ten\""],
    ),
    case(
        "empty id",
        "[[routes]]\nid = \"\" # E\nmatch = { path = \"/a\" }\nmode = \"legacy\"\n",
        &["the route id is empty"],
    ),
    case(
        "id with a space",
        "[[routes]]\nid = \"my route\" # E\nmatch = { path = \"/a\" }\nmode = \"legacy\"\n",
        &["route id \"my route\" may contain only letters, digits, `-` and `_`"],
    ),
    whole(
        "tls files missing",
        "default_upstream = \"legacy\"\n\n[listen]\naddress = \"127.0.0.1:0\"\ntls = { cert = \"missing.pem\", key = \"missing-key.pem\" } # E # E\n\n[upstreams.legacy]\nurl = \"http://127.0.0.1:8081\"\n",
        &[
            "certificate file \"missing.pem\" not found",
            "private key file \"missing-key.pem\" not found",
        ],
    ),
    case(
        "unknown table",
        "[lisen] # E\naddress = \"127.0.0.1:1\"\n",
        &["unknown key `lisen`; did you mean `listen`?"],
    ),
    case(
        "host with a port",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\", host = \"shop.example:8080\" } # E\nmode = \"legacy\"\n",
        &["host \"shop.example:8080\" includes a port"],
    ),
    case(
        "method listed twice",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\", methods = [\"GET\", \"GET\"] } # E\nmode = \"legacy\"\n",
        &["method GET is listed twice"],
    ),
    case(
        "zero timeout",
        "[upstreams.slow]\nurl = \"http://127.0.0.1:1\"\nresponse_timeout = \"0s\" # E\n",
        &["must be greater than 0"],
    ),
    case(
        "duration that is not one",
        "[upstreams.slow]\nurl = \"http://127.0.0.1:1\"\nresponse_timeout = \"soon\" # E\n",
        &["expected a duration, found the string \"soon\""],
    ),
    case(
        "size that is not one",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"legacy\"\nmax_request_body = \"lots\" # E\n",
        &["`lots` is not a size"],
    ),
    case(
        "nats bus without url",
        "[bus]\nkind = \"nats\" # E\n",
        &["bus kind `nats` needs a `url`"],
    ),
    case(
        "bad header name",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\", headers = { \"x y\" = \"1\" } } # E\nmode = \"legacy\"\n",
        &["\"x y\" is not a valid header name"],
    ),
    case(
        "several errors in one route",
        "[[routes]]\nid = \"a b\" # E\nmatch = { path = \"a\" } # E\nmode = \"canary\"\nextracted = \"nope\" # E\ncanary = { percent = -1 } # E\n",
        &[
            "may contain only letters",
            "must start with `/`",
            "\"nope\" is not defined",
            "percent -1 is out of range",
        ],
    ),
    whole(
        "several errors across the file",
        "default_upstream = \"legacy\"\n\n[listen]\naddress = \"nowhere\" # E\n\n[upstreams.legacy]\nurl = \"ftp://127.0.0.1:21\" # E\n\n[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"retired\"\nextracted = \"legacyy\" # E\n\n[[routes]]\nid = \"b\"\nmatch = { path = \"/b\", methods = [\"post\"] } # E\nmode = \"legacy\"\n",
        &[
            "\"nowhere\" is not a socket address",
            "unsupported scheme `ftp`",
            "did you mean \"legacy\"?",
            "must be upper-case",
        ],
    ),
];

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
