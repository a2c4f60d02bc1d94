//! The broken-file table: each case names the line (by a `# E1` marker comment) or the
//! environment variable each diagnostic must point at, and a piece of its printed text.

use std::collections::HashMap;

use super::super::*;
use super::HEAD;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, Diagnostics> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load_text(
        text,
        "t.toml",
        Origin::Text("t.toml".into()),
        PathBuf::from("."),
        &env,
    )
}

/// The line carrying `# NAME` (e.g. `# E1`), from 1.
fn marker_line(text: &str, marker: &str) -> usize {
    let tag = format!("# {marker}");
    let found = text.lines().position(|l| l.trim_end().ends_with(&tag));
    found.unwrap_or_else(|| panic!("no line ends with `{tag}` in:\n{text}")) + 1
}

struct Case {
    /// What the case is about.
    name: &'static str,
    /// Text after [`HEAD`] (or the whole file if `whole`).
    text: &'static str,
    whole: bool,
    env: &'static [(&'static str, &'static str)],
    /// (`E1`-style marker of the expected line, or `$VAR` for an environment variable,
    ///  substring of the printed diagnostic).
    expect: &'static [(&'static str, &'static str)],
}

const fn case(
    name: &'static str,
    text: &'static str,
    expect: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        name,
        text,
        whole: false,
        env: &[],
        expect,
    }
}

const fn whole(
    name: &'static str,
    text: &'static str,
    expect: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        name,
        text,
        whole: true,
        env: &[],
        expect,
    }
}

const fn env(
    name: &'static str,
    text: &'static str,
    env: &'static [(&'static str, &'static str)],
    expect: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        name,
        text,
        whole: false,
        env,
        expect,
    }
}

const ROUTE: &str = "[[routes]]\nid = \"r\"\nmatch = { path = \"/r\" }\nmode = \"legacy\"\n";

const CASES: &[Case] = &[
    whole(
        "syntax error",
        "default_upstream = \"legacy\"\nx = = 1 # E1\n",
        &[("E1", "invalid TOML")],
    ),
    whole(
        "unclosed table header",
        "default_upstream = \"a\"\n[listen # E1\n",
        &[("E1", "invalid TOML")],
    ),
    case(
        "unknown key with suggestion",
        "[[routes]]\nid = \"a\"\nmtach = { path = \"/a\" } # E1\nmode = \"legacy\"\n",
        &[(
            "E1",
            "routes[0].mtach: unknown key `mtach`; did you mean `match`?",
        )],
    ),
    case(
        "unknown table",
        "[lisen] # E1\naddress = \"127.0.0.1:1\"\n",
        &[("E1", "did you mean `listen`?")],
    ),
    case(
        "unknown key without suggestion lists known keys",
        "[bus]\nflavour = 1 # E1\n",
        &[(
            "E1",
            "unknown key `flavour`; known keys here: kind, path, segment_size, retention, max_size, fsync, fsync_interval, url, stream, subject_prefix, key_prefix, maxlen, channel, spool, spool_max, on_full, batch, exchanges",
        )],
    ),
    whole(
        "top-level key after a table",
        "[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\ndefault_upstream = \"legacy\" # E1\n",
        &[("E1", "move it above the first [table]")],
    ),
    case(
        "type error",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\ncanary = { percent = \"ten\" } # E1\n",
        &[(
            "E1",
            "routes[0].canary.percent: expected a number, found the string \"ten\"",
        )],
    ),
    case(
        "unknown mode",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"shadw\" # E1\n",
        &[(
            "E1",
            "unknown mode \"shadw\"; use one of legacy, shadow, canary, extracted, retired",
        )],
    ),
    whole(
        "default upstream undefined",
        "default_upstream = \"legacyy\" # E1\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n",
        &[(
            "E1",
            "default upstream \"legacyy\" is not defined in [upstreams]; did you mean \"legacy\"?",
        )],
    ),
    case(
        "https upstream",
        "[upstreams.new]\nurl = \"https://10.0.0.1\" # E1\n",
        &[("E1", "https upstreams are not supported yet")],
    ),
    case(
        "upstream not a url",
        "[upstreams.new]\nurl = \"not a url\" # E1\n",
        &[("E1", "is not a URL")],
    ),
    case(
        "upstream with query",
        "[upstreams.new]\nurl = \"http://10.0.0.1/?a=1\" # E1\n",
        &[("E1", "cannot have a query")],
    ),
    case(
        "upstream without url",
        "[upstreams.new] # E1\nhost_header = \"rewrite\"\n",
        &[("E1", "upstreams.new.url: missing required key `url`")],
    ),
    case(
        "listen address",
        "[listen]\naddress = \"localhost:8080\" # E1\n",
        &[("E1", "is not a socket address")],
    ),
    case(
        "admin address",
        "[admin]\naddress = \"9901\" # E1\n",
        &[("E1", "admin.address: \"9901\" is not a socket address")],
    ),
    case(
        "route id characters",
        "[[routes]]\nid = \"a b\" # E1\nmatch = { path = \"/a\" }\nmode = \"legacy\"\n",
        &[("E1", "may contain only letters, digits")],
    ),
    case(
        "duplicate route id names the first",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"legacy\"\n[[routes]]\nid = \"a\" # E1\nmatch = { path = \"/b\" }\nmode = \"legacy\"\n",
        &[(
            "E1",
            "duplicate route id \"a\": first used by routes[0], at t.toml:7",
        )],
    ),
    case(
        "legacy names no upstream",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"legacy\"\nlegacy = \"nope\" # E1\n",
        &[("E1", "legacy upstream \"nope\" is not defined")],
    ),
    case(
        "shadow needs extracted",
        "[[routes]] # E1\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"shadow\"\n",
        &[("E1", "mode `shadow` needs `extracted`")],
    ),
    case(
        "canary needs a canary table",
        "[[routes]] # E1\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\n",
        &[(
            "E1",
            "needs a `canary` table; add canary = { percent = 10 }",
        )],
    ),
    case(
        "canary without percent",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\ncanary = { key = \"ip\" } # E1\n",
        &[("E1", "missing required key `percent`")],
    ),
    case(
        "canary percent range",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"canary\"\nextracted = \"misc\"\ncanary = { percent = 150 } # E1\n",
        &[("E1", "percent 150 is out of range")],
    ),
    case(
        "shadow sample range",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"shadow\"\nextracted = \"misc\"\n[routes.shadow]\nsample = 1.5 # E1\n",
        &[("E1", "sample 1.5 is out of range")],
    ),
    case(
        "shadow corpus cap too small",
        "[shadow]\ncorpus_max = \"1KiB\" # E1\n",
        &[(
            "E1",
            "shadow.corpus_max: 1KiB is too small to hold a capture",
        )],
    ),
    case(
        "shadow corpus folder empty",
        "[shadow]\ncorpus = \" \" # E1\n",
        &[("E1", "the corpus folder is empty")],
    ),
    case(
        "shadow unknown key",
        "[shadow]\ncorpse = 1 # E1\n",
        &[("E1", "did you mean `corpus`?")],
    ),
    case(
        "canary key",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\" }\nmode = \"legacy\"\ncanary = { percent = 1, key = \"cookie:\" } # E1\n",
        &[("E1", "invalid canary key \"cookie:\"")],
    ),
    case(
        "path without slash",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"misc\" } # E1\nmode = \"legacy\"\n",
        &[("E1", "must start with `/`")],
    ),
    case(
        "star in the middle",
        "[[routes]]\nid = \"a\"\nmatch.path = \"/a/*/b\" # E1\nmode = \"legacy\"\n",
        &[("E1", "must be the whole last segment")],
    ),
    case(
        "repeated parameter",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a/{id}/{id}\" } # E1\nmode = \"legacy\"\n",
        &[("E1", "parameter `{id}` appears twice")],
    ),
    case(
        "empty parameter",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a/{}\" } # E1\nmode = \"legacy\"\n",
        &[("E1", "empty parameter")],
    ),
    case(
        "query in path",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a?b=1\" } # E1\nmode = \"legacy\"\n",
        &[("E1", "contains `?`")],
    ),
    case(
        "lower-case method",
        "[[routes]]\nid = \"a\"\nmode = \"legacy\"\n[routes.match]\npath = \"/a\"\nmethods = [\n  \"POST\",\n  \"get\", # E1\n]\n",
        &[(
            "E1",
            "routes[0].match.methods[1]: method \"get\" must be upper-case; write \"GET\"",
        )],
    ),
    case(
        "duplicate method",
        "[[routes]]\nid = \"a\"\nmatch = { path = \"/a\", methods = [\"GET\", \"GET\"] } # E1\nmode = \"legacy\"\n",
        &[("E1", "method GET is listed twice")],
    ),
    case(
        "header name",
        "[[routes]]\nid = \"a\"\nmode = \"legacy\"\nmatch = { path = \"/a\", headers = { \"X Bad\" = \"1\" } } # E1\n",
        &[(
            "E1",
            "routes[0].match.headers.\"X Bad\": \"X Bad\" is not a valid header name",
        )],
    ),
    case(
        "host with port",
        "[[routes]]\nid = \"a\"\nmode = \"legacy\"\nmatch = { path = \"/a\", host = \"shop.example.com:8080\" } # E1\n",
        &[("E1", "includes a port")],
    ),
    case(
        "tls files",
        "[listen.tls]\ncert = \"no-such-cert.pem\" # E1\nkey = \"no-such-key.pem\" # E2\n",
        &[
            ("E1", "certificate file \"no-such-cert.pem\" not found"),
            ("E2", "private key file"),
        ],
    ),
    case(
        "log format",
        "[log]\nformat = \"xml\" # E1\n",
        &[("E1", "unknown format \"xml\"; use one of text, json")],
    ),
    case(
        "bus needs url",
        "[bus]\nkind = \"nats\" # E1\n",
        &[("E1", "bus kind `nats` needs a `url`")],
    ),
    case(
        "bus url scheme",
        "[bus]\nkind = \"redis\"\nurl = \"nats://127.0.0.1:4222\" # E1\n",
        &[("E1", "is not a redis/rediss URL")],
    ),
    case(
        "zero timeout",
        "[upstreams.new]\nurl = \"http://10.0.0.1\"\nconnect_timeout = \"0s\" # E1\n",
        &[("E1", "must be greater than 0")],
    ),
    case(
        "zero size",
        "[listen]\nmax_request_body = 0 # E1\n",
        &[("E1", "listen.max_request_body: must be greater than 0")],
    ),
    case(
        "bad duration",
        "[listen]\nidle_timeout = \"10 parsecs\" # E1\n",
        &[("E1", "expected a duration")],
    ),
    whole(
        "table expected",
        "default_upstream = \"legacy\"\nlisten = \"127.0.0.1:80\" # E1\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n",
        &[(
            "E1",
            "listen: expected a table, found the string \"127.0.0.1:80\"; write a table",
        )],
    ),
    case(
        "negative count",
        "[listen]\nmax_connections = -1 # E1\n",
        &[(
            "E1",
            "expected a non-negative whole number, found the integer -1",
        )],
    ),
    case(
        "several errors at once",
        "[listen]\naddres = \"x\" # E1\n[upstreams.new]\nurl = \"ftp://x\" # E2\n[[routes]]\nid = \"a\"\nmatch = { path = \"nope\" } # E3\nmode = \"shadw\" # E4\n[[routes]]\nid = \"b!\" # E5\nmatch = { path = \"/b\", methods = [\"get\"] } # E6\nmode = \"legacy\"\n",
        &[
            ("E1", "did you mean `address`?"),
            ("E2", "unsupported scheme `ftp`"),
            ("E3", "must start with `/`"),
            ("E4", "unknown mode"),
            ("E5", "may contain only letters"),
            ("E6", "must be upper-case"),
        ],
    ),
    env(
        "env: bad address",
        "",
        &[("STRANGLER__LISTEN__ADDRESS", "nonsense")],
        &[(
            "$STRANGLER__LISTEN__ADDRESS",
            "listen.address: \"nonsense\" is not a socket address",
        )],
    ),
    env(
        "env: unknown key",
        "",
        &[("STRANGLER__LISTEN__ADRESS", "127.0.0.1:1")],
        &[("$STRANGLER__LISTEN__ADRESS", "did you mean `address`?")],
    ),
    env(
        "env: index out of range",
        ROUTE,
        &[("STRANGLER__ROUTES__3__MODE", "shadow")],
        &[("$STRANGLER__ROUTES__3__MODE", "`routes` has 1 entry")],
    ),
    env(
        "env: type error",
        ROUTE,
        &[("STRANGLER__ROUTES__0__CANARY__PERCENT", "lots")],
        &[(
            "$STRANGLER__ROUTES__0__CANARY__PERCENT",
            "expected a number, found the string \"lots\"",
        )],
    ),
    env(
        "env: bad mode",
        ROUTE,
        &[("strangler__routes__0__mode", "Shadow")],
        &[("$strangler__routes__0__mode", "unknown mode \"Shadow\"")],
    ),
];

#[test]
fn broken_files_are_reported_with_lines() {
    let mut failures = Vec::new();
    for case in CASES {
        let text = if case.whole {
            case.text.to_owned()
        } else {
            format!("{HEAD}{}", case.text)
        };
        let diags = match load(&text, case.env) {
            Ok(_) => {
                failures.push(format!("{}: loaded without errors", case.name));
                continue;
            }
            Err(d) => d,
        };
        let printed = diags.to_string();
        if diags.len() != case.expect.len() {
            failures.push(format!(
                "{}: expected {} diagnostics, got:\n{printed}",
                case.name,
                case.expect.len()
            ));
            continue;
        }
        for (at, needle) in case.expect {
            let wanted = match at.strip_prefix('$') {
                Some(var) => Location::Env {
                    var: var.to_owned(),
                },
                None => Location::File {
                    path: "t.toml".into(),
                    line: marker_line(&text, at),
                    column: 0,
                },
            };
            let hit = diags.iter().any(|d| {
                let place = match (&d.location, &wanted) {
                    (Some(Location::File { line, .. }), Location::File { line: want, .. }) => {
                        line == want
                    }
                    (Some(a), b) => a == b,
                    (None, _) => false,
                };
                place && d.to_string().contains(needle)
            });
            if !hit {
                failures.push(format!(
                    "{}: no `{needle}` at {wanted:?} in:\n{printed}",
                    case.name
                ));
            }
        }
    }
    assert!(CASES.len() >= 25);
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
