//! The broken routes.toml files `strangler check` must diagnose: each line ending in `# E`
//! must be named by one diagnostic whose text contains the matching expected message.

/// What every broken case starts with (12 lines, then an empty line 13).
pub const HEAD: &str = r#"default_upstream = "legacy"

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
pub struct Case {
    pub name: &'static str,
    /// Whether `text` is the whole file (otherwise it follows [`HEAD`]).
    pub whole: bool,
    pub text: &'static str,
    pub expect: &'static [&'static str],
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

pub const CASES: &[Case] = &[
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
