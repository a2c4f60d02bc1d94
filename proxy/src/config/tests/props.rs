//! Property tests: generated valid configs round-trip through TOML; no text panics the loader;
//! a mutated valid file fails, if it fails, with locations inside the file.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;

use super::super::*;
use super::DESIGN_MINIMAL;

fn duration() -> impl Strategy<Value = Duration> {
    (1u64..10_000_000).prop_map(Duration::from_millis)
}

fn size() -> impl Strategy<Value = ByteSize> {
    prop_oneof![
        (1u64..1 << 40).prop_map(ByteSize),
        (1u64..1024).prop_map(|n| ByteSize(n << 20))
    ]
}

fn upstream() -> impl Strategy<Value = UpstreamConfig> {
    (
        1u16..,
        "(/[a-z0-9]{1,6}){0,2}",
        any::<bool>(),
        duration(),
        duration(),
        duration(),
        0u32..5,
    )
        .prop_map(
            |(port, prefix, rewrite, connect, response, idle, retries)| UpstreamConfig {
                url: format!("http://127.0.0.1:{port}{prefix}"),
                host_header: if rewrite {
                    HostHeader::Rewrite
                } else {
                    HostHeader::Preserve
                },
                connect_timeout: connect,
                response_timeout: response,
                pool_idle_timeout: idle,
                connect_retries: retries,
            },
        )
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof!["[a-z0-9._~-]{1,8}", Just("{}".to_owned())],
            0..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(segments, prefix)| {
            let mut out = String::new();
            for (i, s) in segments.iter().enumerate() {
                out.push('/');
                if s == "{}" {
                    out.push_str(&format!("{{p{i}}}"))
                } else {
                    out.push_str(s)
                }
            }
            if prefix {
                out.push_str("/*");
            } else if out.is_empty() {
                out.push('/');
            }
            out
        })
}

fn methods() -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(
        vec!["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "PURGE"],
        0..4,
    )
    .prop_map(|m| m.into_iter().map(str::to_owned).collect())
}

fn matcher() -> impl Strategy<Value = MatchConfig> {
    (
        path(),
        methods(),
        prop::option::of("[a-z]{1,8}(\\.[a-z][a-z0-9-]{0,6}[a-z]){0,2}"),
        prop::collection::btree_map("X-[A-Za-z]{1,6}", "[ -~]{0,6}", 0..3),
    )
        .prop_map(|(path, methods, host, headers)| MatchConfig {
            path,
            methods,
            host,
            headers,
        })
}

fn canary() -> impl Strategy<Value = CanaryConfig> {
    (
        0.0f64..=100.0,
        prop_oneof![
            Just("ip"),
            Just("request_id"),
            Just("header:x-user"),
            Just("cookie:session")
        ],
    )
        .prop_map(|(percent, key)| CanaryConfig {
            percent,
            key: key.to_owned(),
        })
}

fn shadow() -> impl Strategy<Value = ShadowConfig> {
    (0.0f64..=1.0, prop::option::of(size()), any::<bool>()).prop_map(
        |(sample, max_body, mirror)| ShadowConfig {
            sample,
            max_body,
            writes: if mirror {
                WritePolicy::Mirror
            } else {
                WritePolicy::Skip
            },
            ..ShadowConfig::default()
        },
    )
}

/// A route whose upstream references are indexes into the upstream list (fixed up later).
fn route() -> impl Strategy<Value = (RouteConfig, usize, Option<usize>)> {
    let mode = prop::sample::select(vec![
        RouteMode::Legacy,
        RouteMode::Shadow,
        RouteMode::Canary,
        RouteMode::Extracted,
        RouteMode::Retired,
    ]);
    (
        "[A-Za-z0-9_-]{1,10}",
        matcher(),
        mode,
        any::<usize>(),
        prop::option::of(any::<usize>()),
        prop::option::of(shadow()),
        prop::option::of(canary()),
        canary(),
        prop::option::of(size()),
    )
        .prop_map(
            |(
                id,
                matcher,
                mode,
                legacy,
                extracted,
                shadow,
                canary_cfg,
                fallback,
                max_request_body,
            )| {
                let canary = if mode == RouteMode::Canary {
                    Some(canary_cfg.unwrap_or(fallback))
                } else {
                    canary_cfg
                };
                let route = RouteConfig {
                    id,
                    matcher,
                    mode,
                    legacy: None,
                    extracted: None,
                    shadow,
                    canary,
                    max_request_body,
                    diff: None,
                    events: None,
                    emit: Vec::new(),
                    promote: None,
                    rollback: None,
                };
                (route, legacy, extracted)
            },
        )
}

fn raw_config() -> impl Strategy<Value = RawConfig> {
    (
        prop::collection::btree_map("[A-Za-z][A-Za-z0-9_-]{0,8}", upstream(), 1..4),
        prop::collection::vec(route(), 0..5),
        any::<usize>(),
        (
            1u16..30000,
            30001u16..,
            1usize..100_000,
            duration(),
            duration(),
            duration(),
            size(),
            size(),
        ),
        prop_oneof![
            Just(BusConfig::default()),
            "[a-z]{1,6}(/[a-z]{1,6})?".prop_map(|p| BusConfig {
                kind: BusKind::Log,
                path: Some(p),
                url: None,
                ..BusConfig::default()
            }),
            Just(BusConfig {
                kind: BusKind::Nats,
                path: None,
                url: Some("nats://127.0.0.1:4222".into()),
                ..BusConfig::default()
            }),
            Just(BusConfig {
                kind: BusKind::Redis,
                path: None,
                url: Some("redis://127.0.0.1:6379".into()),
                ..BusConfig::default()
            }),
        ],
        prop::sample::select(vec!["text", "json"]),
        prop::sample::select(vec!["info", "debug", "strangler=debug,info", "warn"]),
    )
        .prop_map(|(upstreams, routes, default, listen, bus, format, level)| {
            let names: Vec<String> = upstreams.keys().cloned().collect();
            let pick = |i: usize| names[i % names.len()].clone();
            let mut ids = BTreeSet::new();
            let routes = routes
                .into_iter()
                .enumerate()
                .map(|(i, (mut route, legacy, extracted))| {
                    if !ids.insert(route.id.clone()) {
                        route.id = format!("{}-{i}", route.id);
                        ids.insert(route.id.clone());
                    }
                    route.legacy = Some(pick(legacy));
                    route.extracted = match (route.mode, extracted) {
                        (_, Some(e)) => Some(pick(e)),
                        (RouteMode::Legacy, None) => None,
                        (_, None) => Some(pick(legacy + 1)),
                    };
                    route
                })
                .collect();
            let (
                listen_port,
                admin_port,
                max_connections,
                header,
                idle,
                grace,
                max_header_bytes,
                max_request_body,
            ) = listen;
            RawConfig {
                default_upstream: pick(default),
                listen: ListenConfig {
                    address: format!("127.0.0.1:{listen_port}"),
                    tls: None,
                    max_connections,
                    header_read_timeout: header,
                    idle_timeout: idle,
                    shutdown_grace: grace,
                    max_header_bytes,
                    max_request_body,
                    ..ListenConfig::default()
                },
                admin: AdminConfig {
                    address: format!("[::1]:{admin_port}"),
                    token_file: None,
                    token_env: Some("TOKEN".into()),
                },
                upstreams: upstreams.into_iter().collect::<BTreeMap<_, _>>(),
                routes,
                shadow: GlobalShadowConfig::default(),
                bus,
                log: LogConfig {
                    format: format.into(),
                    level: level.into(),
                },
                cluster: None,
            }
        })
}

/// Every location of `diags` lies inside `text`.
fn located_inside(text: &str, diags: &Diagnostics) -> Result<(), TestCaseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diags {
        match &d.location {
            Some(Location::File { path, line, column }) => {
                prop_assert_eq!(path, "t.toml");
                prop_assert!(
                    *line >= 1 && *line <= lines.len(),
                    "line {} of {}: {}",
                    line,
                    lines.len(),
                    d
                );
                let width = lines[*line - 1].chars().count();
                prop_assert!(
                    *column >= 1 && *column <= width + 1,
                    "column {} of {}: {}",
                    column,
                    width,
                    d
                );
            }
            other => prop_assert!(false, "not in the file: {:?} {}", other, d),
        }
    }
    Ok(())
}

/// A few values that break things in different ways.
const NASTY: &[&str] = &[
    "\"\"",
    "0",
    "-1",
    "1.5",
    "nan",
    "[]",
    "{}",
    "\"x\"",
    "\"/a/{}\"",
    "\"shadw\"",
    "true",
    "\"http://\"",
    "\"https://a\"",
    "\"0s\"",
    "[\"get\"]",
    "{ path = 1 }",
    "1979-05-27",
    "\"ip:x\"",
    "=",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn generated_configs_round_trip(raw in raw_config()) {
        let text = toml::to_string(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match from_toml_str(&text, "t.toml") {
            Ok(config) => prop_assert_eq!(config.raw(), &raw, "{}", text),
            Err(e) => prop_assert!(false, "{}\n---\n{}", e, text),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = from_toml_str(&text, "t.toml");
    }

    #[test]
    fn toml_like_text_never_panics(text in "[a-z_\\[\\]=\"{}., 0-9\n#*/:-]{0,300}") {
        if let Err(diags) = from_toml_str(&text, "t.toml") {
            located_inside(&text, &diags)?;
        }
    }

    #[test]
    fn mutated_files_fail_inside_the_file(
        generated in raw_config(),
        use_design in any::<bool>(),
        line in any::<prop::sample::Index>(),
        kind in 0..3u8,
        nasty in prop::sample::select(NASTY),
    ) {
        let base = if use_design {
            DESIGN_MINIMAL.to_owned()
        } else {
            toml::to_string(&generated).map_err(|e| TestCaseError::fail(e.to_string()))?
        };
        let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
        let i = line.index(lines.len());
        match kind {
            0 => { lines.remove(i); }
            1 => {
                let mutated = match lines[i].split_once('=') {
                    Some((key, _)) => format!("{key}= {nasty}"),
                    None => format!("{} {nasty}", lines[i]),
                };
                lines[i] = mutated;
            }
            _ => { let copy = lines[i].clone(); lines.insert(i, copy); }
        }
        let text = lines.join("\n");
        if let Err(diags) = from_toml_str(&text, "t.toml") {
            prop_assert!(!diags.is_empty());
            located_inside(&text, &diags)?;
        }
    }
}
