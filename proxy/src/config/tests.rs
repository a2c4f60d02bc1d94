//! Loading tests: the DESIGN.md file, environment overrides, locating later diagnostics.
//! The broken-file table is in `tests/broken.rs`, property tests in `tests/props.rs`.

mod broken;
mod props;

use std::collections::HashMap;

use super::*;

/// The minimal `routes.toml` of DESIGN.md, verbatim.
pub(super) const DESIGN_MINIMAL: &str = r#"default_upstream = "legacy"   # where unmatched requests go (top-level keys come before any [table])

[listen]
address = "127.0.0.1:8080"

[admin]                       # admin API, /metrics and the dashboard
address = "127.0.0.1:9901"

[upstreams.legacy]
url = "http://127.0.0.1:8081"
[upstreams.misc]
url = "http://127.0.0.1:8082"

[[routes]]
id = "thumbnail"
match = { path = "/misc/thumbnail", methods = ["GET", "POST"] }   # path may be a prefix "/misc/*" or template "/api/products/{id}"
mode = "shadow"               # legacy | shadow | canary | extracted | retired
legacy = "legacy"
extracted = "misc"
shadow = { sample = 1.0 }
canary = { percent = 10, key = "cookie:session" }

[bus]
kind = "log"                  # log (embedded default) | nats | redis
path = "data/events"          # log: append-only JSON-lines segments
# url = "nats://127.0.0.1:4222"   (nats, redis)
"#;

/// Two upstreams; cases append to it (it is 4 lines, so case lines start at 5).
/// Two upstreams, `legacy` and `misc`, in 5 lines; cases append to it.
pub(super) const HEAD: &str = "default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:8081\"\n[upstreams.misc]\nurl = \"http://127.0.0.1:8082\"\n";

#[test]
fn design_minimal_file_is_valid() {
    let config = from_toml_str(DESIGN_MINIMAL, "routes.toml").unwrap();
    let raw = config.raw();
    assert_eq!(raw.default_upstream, "legacy");
    assert_eq!(raw.routes.len(), 1);
    assert_eq!(raw.routes[0].mode, RouteMode::Shadow);
    assert_eq!(raw.routes[0].matcher.methods, ["GET", "POST"]);
    assert_eq!(raw.routes[0].canary.as_ref().unwrap().key, "cookie:session");
    assert_eq!(raw.bus.kind, BusKind::Log);
    assert_eq!(raw.listen.address, "127.0.0.1:8080");
    assert_eq!(config.origin(), &Origin::Text("routes.toml".into()));
}

#[test]
fn printed_format() {
    let text = DESIGN_MINIMAL
        .replace("mode = \"shadow\"", "mode = \"shadw\"")
        .replace("extracted = \"misc\"", "extracted = \"mics\"");
    let printed = from_toml_str(&text, "routes.toml").unwrap_err().to_string();
    assert_eq!(
        printed,
        "routes.toml:17:8: routes[0].mode: unknown mode \"shadw\"; use one of legacy, shadow, canary, extracted, retired\n\
         routes.toml:19:13: routes[0].extracted: extracted upstream \"mics\" is not defined in [upstreams]; did you mean \"misc\"?"
    );
}

#[test]
fn locate_attaches_lines_to_later_diagnostics() {
    let config = from_toml_str(DESIGN_MINIMAL, "routes.toml").unwrap();
    let located = config.locate(vec![
        Diagnostic::new("routes[0].match", "overlaps routes[1]"),
        Diagnostic::new("routes[0].nothing", "falls back to the header"),
        Diagnostic::new("", "whole file"),
    ]);
    let lines: Vec<usize> = located
        .iter()
        .map(|d| match &d.location {
            Some(Location::File { line, .. }) => *line,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lines, [16, 14, 1]);
}

#[test]
fn env_overrides_apply_and_keep_key_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    let text = "default_upstream = \"Legacy\"\n[upstreams.Legacy]\nurl = \"http://127.0.0.1:8081\"\n\
                [[routes]]\nid = \"r\"\nmode = \"shadow\"\nextracted = \"Legacy\"\n\
                match = { path = \"/r\", headers = { X-Tenant = \"a\" } }\n";
    std::fs::write(&path, text).unwrap();
    let env: HashMap<String, String> = [
        ("STRANGLER__LISTEN__ADDRESS", "127.0.0.1:9000"),
        ("STRANGLER__LISTEN__MAX_CONNECTIONS", "5"),
        ("STRANGLER__UPSTREAMS__LEGACY__URL", "http://127.0.0.1:9999"),
        ("STRANGLER__ROUTES__0__MODE", "legacy"),
        ("STRANGLER__ROUTES__0__MATCH__METHODS", "GET, POST"),
        ("STRANGLER__ROUTES__0__MATCH__HEADERS__X-TENANT", "b"),
        ("STRANGLER__BUS__KIND", "nats"),
        ("STRANGLER__BUS__URL", "nats://127.0.0.1:4222"),
        ("UNRELATED", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = load_with_env(&path, &env).unwrap();
    let raw = config.raw();
    assert_eq!(raw.listen.address, "127.0.0.1:9000");
    assert_eq!(raw.listen.max_connections, 5);
    assert_eq!(raw.upstreams.keys().collect::<Vec<_>>(), ["Legacy"]);
    assert_eq!(raw.upstreams["Legacy"].url, "http://127.0.0.1:9999");
    assert_eq!(raw.routes[0].mode, RouteMode::Legacy);
    assert_eq!(raw.routes[0].matcher.methods, ["GET", "POST"]);
    assert_eq!(
        raw.routes[0]
            .matcher
            .headers
            .get("X-Tenant")
            .map(String::as_str),
        Some("b")
    );
    assert_eq!(raw.bus.kind, BusKind::Nats);
    assert_eq!(config.base_dir(), dir.path());

    // Without the environment the file's own values hold.
    let plain = load_with_env(&path, &HashMap::new()).unwrap();
    assert_eq!(plain.raw().listen.address, "127.0.0.1:8080");
    assert_eq!(plain.raw().routes[0].mode, RouteMode::Shadow);
}

#[test]
fn unreadable_file_is_one_diagnostic() {
    let err = load_with_env(Path::new("/no/such/routes.toml"), &HashMap::new()).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(
        err.to_string().contains("cannot read /no/such/routes.toml"),
        "{err}"
    );
}

#[test]
fn tls_files_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
    std::fs::write(dir.path().join("key.pem"), "x").unwrap();
    let path = dir.path().join("routes.toml");
    let text = format!("{HEAD}[listen.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n");
    std::fs::write(&path, text).unwrap();
    assert!(load_with_env(&path, &HashMap::new()).is_ok());
}

#[test]
fn log_bus_gets_a_default_path() {
    let config = from_toml_str(&format!("{HEAD}[bus]\nkind = \"log\"\n"), "t.toml").unwrap();
    assert_eq!(config.raw().bus.path.as_deref(), Some("data/events"));
}

#[test]
fn shadow_table_defaults_and_values() {
    let config = from_toml_str(HEAD, "t.toml").unwrap();
    assert_eq!(config.raw().shadow.corpus, "data/diffs");
    assert_eq!(config.raw().shadow.corpus_max, ByteSize(64 << 20));
    let text = format!("{HEAD}[shadow]\ncorpus = \"x/diffs\"\ncorpus_max = \"1MiB\"\n");
    let config = from_toml_str(&text, "t.toml").unwrap();
    assert_eq!(config.raw().shadow.corpus, "x/diffs");
    assert_eq!(config.raw().shadow.corpus_max, ByteSize(1 << 20));
    let off = format!("{HEAD}[shadow]\ncorpus_max = 0\n");
    assert!(from_toml_str(&off, "t.toml").is_ok());
}

#[test]
fn shape_knows_every_schema_key() {
    let route = RouteConfig {
        id: "r".into(),
        matcher: MatchConfig {
            path: "/a".into(),
            methods: vec!["GET".into()],
            host: Some("a.example".into()),
            headers: [("X-A".to_owned(), "1".to_owned())].into(),
        },
        mode: RouteMode::Canary,
        legacy: Some("legacy".into()),
        extracted: Some("legacy".into()),
        shadow: Some(ShadowConfig {
            max_body: Some(ByteSize(1)),
            ..ShadowConfig::default()
        }),
        canary: Some(CanaryConfig {
            percent: 5.0,
            key: "ip".into(),
        }),
        max_request_body: Some(ByteSize(10)),
        diff: Some(DiffConfig {
            ignore: vec!["/body/a".into()],
            unordered: vec!["/body/b".into()],
            relative_tolerance: 0.5,
            timestamp_tolerance: std::time::Duration::from_secs(1),
            ..DiffConfig::default()
        }),
        events: Some(RouteEvents::Settings(ExchangeEventsConfig {
            headers: Some(vec!["content-type".into()]),
            bodies: true,
            max_body: Some(ByteSize(1024)),
        })),
        emit: vec![EmitConfig {
            kind: "shop.order.placed".into(),
            when: EmitWhen {
                methods: vec!["POST".into()],
                status: vec![StatusMatch::Code(201), StatusMatch::Class("2xx".into())],
            },
            data: [("id".to_owned(), "response:/id".to_owned())].into(),
        }],
        promote: Some(PromoteConfig::default()),
        rollback: Some(RollbackConfig::default()),
    };
    let upstream = UpstreamConfig {
        url: "http://127.0.0.1:1".into(),
        host_header: HostHeader::Rewrite,
        connect_timeout: std::time::Duration::from_secs(1),
        response_timeout: std::time::Duration::from_secs(1),
        pool_idle_timeout: std::time::Duration::from_secs(1),
        connect_retries: 2,
    };
    let raw = RawConfig {
        default_upstream: "legacy".into(),
        listen: ListenConfig {
            tls: Some(TlsConfig {
                cert: "c".into(),
                key: "k".into(),
            }),
            ..ListenConfig::default()
        },
        admin: AdminConfig {
            token_file: Some("t".into()),
            token_env: Some("T".into()),
            ..AdminConfig::default()
        },
        upstreams: [("legacy".to_owned(), upstream)].into(),
        routes: vec![route],
        shadow: GlobalShadowConfig {
            corpus: "corpus".into(),
            corpus_max: ByteSize(1 << 20),
        },
        bus: BusConfig {
            kind: BusKind::Nats,
            path: Some("p".into()),
            url: Some("nats://x".into()),
            retention: std::time::Duration::from_secs(60),
            fsync: Fsync::Always,
            on_full: OnFull::DropOldest,
            exchanges: false,
            ..BusConfig::default()
        },
        log: LogConfig::default(),
        cluster: Some(ClusterConfig {
            kind: ClusterKind::Nats,
            url: "nats://127.0.0.1:4222".into(),
            bucket: "b".into(),
            instance: Some("edge-1".into()),
            evidence_window: std::time::Duration::from_secs(5),
            lease_ttl: std::time::Duration::from_secs(6),
        }),
    };
    let text = toml::to_string(&raw).unwrap();
    let map = config::File::from_str(&text, FileFormat::Toml)
        .collect()
        .unwrap();
    let mut value = Value::new(None, ValueKind::Table(map));
    let (diags, _) = shape::check(&mut value, &Locator::parse("t", &text).unwrap());
    assert!(diags.is_empty(), "{diags:?}\n{text}");
    assert_eq!(RawConfig::deserialize(value).unwrap(), raw);
}
