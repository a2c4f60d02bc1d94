//! Property tests: `find` against a brute-force oracle written independently of the matcher.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

use super::*;
use crate::config::{MatchConfig, RouteConfig, RouteMode};

// === the oracle ===

/// A route as the oracle sees it: the written pattern and conditions.
#[derive(Debug, Clone)]
struct Spec {
    path: String,
    methods: Vec<String>,
    host: Option<String>,
    headers: BTreeMap<String, String>,
}

/// Percent-decodes the simple way (valid `%XX` only).
fn naive_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Pattern tokens: `Some(literal)` / `None` for a param; and whether it ends in `*`.
fn naive_parse(path: &str) -> (Vec<Option<Vec<u8>>>, bool) {
    let mut parts: Vec<&str> = path[1..].split('/').collect();
    let star = parts.last() == Some(&"*");
    if star {
        parts.pop();
    }
    let tokens = parts
        .into_iter()
        .map(|p| {
            if p.starts_with('{') {
                None
            } else {
                Some(naive_decode(p))
            }
        })
        .collect();
    (tokens, star)
}

fn naive_matches(
    spec: &Spec,
    method: &str,
    host: Option<&str>,
    path: &str,
    headers: &[(&str, &str)],
) -> bool {
    let path = path.split('?').next().unwrap();
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let (tokens, star) = naive_parse(&spec.path);
    let path_ok = if star {
        segments.len() >= tokens.len()
    } else {
        segments.len() == tokens.len()
    } && tokens.iter().zip(&segments).all(|(t, s)| match t {
        Some(lit) => naive_decode(s) == *lit,
        None => !s.is_empty(),
    });
    let method_ok = spec.methods.is_empty() || spec.methods.iter().any(|m| m == method);
    let host_ok = match &spec.host {
        None => true,
        Some(h) => {
            host.map(|x| x.split(':').next().unwrap().to_ascii_lowercase())
                == Some(h.to_ascii_lowercase())
        }
    };
    let headers_ok = spec.headers.iter().all(|(n, v)| {
        let values: Vec<&str> = headers
            .iter()
            .filter(|(hn, _)| hn.eq_ignore_ascii_case(n))
            .map(|(_, hv)| *hv)
            .collect();
        values == [v.as_str()]
    });
    path_ok && method_ok && host_ok && headers_ok
}

/// The rank the module documents: path positions (literal 3 > param 2 > end 1 > `*` 0),
/// then host, then methods, then header count.
fn naive_rank(spec: &Spec) -> (Vec<u8>, bool, bool, usize) {
    let (tokens, star) = naive_parse(&spec.path);
    let mut kinds: Vec<u8> = tokens
        .iter()
        .map(|t| if t.is_some() { 3 } else { 2 })
        .collect();
    kinds.push(if star { 0 } else { 1 });
    (
        kinds,
        spec.host.is_some(),
        !spec.methods.is_empty(),
        spec.headers.len(),
    )
}

fn naive_find<'s>(specs: &'s [Spec], req: &Req) -> Vec<(usize, &'s Spec)> {
    let hs: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let matching: Vec<(usize, &Spec)> = specs
        .iter()
        .enumerate()
        .filter(|(_, s)| naive_matches(s, &req.method, req.host.as_deref(), &req.path, &hs))
        .collect();
    let Some(best) = matching.iter().map(|(_, s)| naive_rank(s)).max() else {
        return vec![];
    };
    matching
        .into_iter()
        .filter(|(_, s)| naive_rank(s) == best)
        .collect()
}

/// A request both routes match, built from `a`'s pattern and both routes' conditions.
fn witness(a: &Spec, b: &Spec) -> Option<Req> {
    let (tokens, _) = naive_parse(&a.path);
    let parts: Vec<&str> = a.path[1..].split('/').collect();
    let path = format!(
        "/{}",
        tokens
            .iter()
            .zip(parts)
            .map(|(t, raw)| if t.is_some() {
                raw.to_owned()
            } else {
                "v".to_owned()
            })
            .collect::<Vec<_>>()
            .join("/")
    );
    let host = a.host.clone().or_else(|| b.host.clone());
    let mut headers: Vec<(String, String)> = a
        .headers
        .iter()
        .chain(&b.headers)
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    headers.sort();
    headers.dedup();
    let hs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    ["GET", "POST", "PUT"].into_iter().find_map(|m| {
        let both = naive_matches(a, m, host.as_deref(), &path, &hs)
            && naive_matches(b, m, host.as_deref(), &path, &hs);
        both.then(|| Req {
            method: m.to_owned(),
            host: host.clone(),
            path: path.clone(),
            headers: headers.clone(),
        })
    })
}

// === fixtures ===

#[derive(Debug, Clone)]
struct Req {
    method: String,
    host: Option<String>,
    path: String,
    headers: Vec<(String, String)>,
}

fn config(specs: &[Spec]) -> RawConfig {
    let mut raw: RawConfig = toml::from_str("default_upstream = \"legacy\"").unwrap();
    raw.routes = specs
        .iter()
        .enumerate()
        .map(|(i, s)| RouteConfig {
            id: format!("r{i}"),
            matcher: MatchConfig {
                path: s.path.clone(),
                methods: s.methods.clone(),
                host: s.host.clone(),
                headers: s.headers.clone(),
            },
            mode: RouteMode::Extracted,
            legacy: None,
            extracted: Some("new".into()),
            shadow: None,
            canary: None,
            max_request_body: None,
            diff: None,
            events: None,
            emit: Vec::new(),
            promote: None,
            rollback: None,
        })
        .collect();
    raw
}

fn find(t: &Table, req: &Req) -> Option<String> {
    let mut map = HeaderMap::new();
    for (n, v) in &req.headers {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let method = Method::from_bytes(req.method.as_bytes()).unwrap();
    t.find(&method, req.host.as_deref(), &req.path, &map)
        .map(|m| m.route.id.to_string())
}

fn spec() -> impl Strategy<Value = Spec> {
    let segment = prop_oneof![Just("a"), Just("b"), Just(""), Just("%61"), Just("{p}")];
    let path = (prop::collection::vec(segment, 0..=3), any::<bool>()).prop_map(|(segs, star)| {
        let segs: Vec<String> = segs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if *s == "{p}" {
                    format!("{{p{i}}}")
                } else {
                    (*s).to_owned()
                }
            })
            .collect();
        match (segs.is_empty(), star) {
            (true, true) => "/*".to_owned(),
            (true, false) => "/".to_owned(),
            (false, true) => format!("/{}/*", segs.join("/")),
            (false, false) => format!("/{}", segs.join("/")),
        }
    });
    let methods = prop_oneof![
        Just(vec![]),
        Just(vec!["GET".to_owned()]),
        Just(vec!["POST".to_owned()]),
        Just(vec!["GET".to_owned(), "POST".to_owned()]),
    ];
    let host = prop_oneof![
        Just(None),
        Just(Some("h1".to_owned())),
        Just(Some("h2".to_owned()))
    ];
    let headers = prop_oneof![
        Just(vec![]),
        Just(vec![("x-a", "1")]),
        Just(vec![("x-a", "2")]),
        Just(vec![("x-b", "1")]),
        Just(vec![("x-a", "1"), ("x-b", "1")]),
    ]
    .prop_map(|hs| {
        hs.into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    });
    (path, methods, host, headers).prop_map(|(path, methods, host, headers)| Spec {
        path,
        methods,
        host,
        headers,
    })
}

fn request() -> impl Strategy<Value = Req> {
    let segment = prop_oneof![
        Just("a"),
        Just("b"),
        Just(""),
        Just("%61"),
        Just("A"),
        Just("c")
    ];
    let path = prop::collection::vec(segment, 0..=4).prop_map(|s| format!("/{}", s.join("/")));
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT")].prop_map(str::to_owned);
    let host = prop_oneof![
        Just(None),
        Just(Some("h1")),
        Just(Some("H1:80")),
        Just(Some("h2"))
    ]
    .prop_map(|h| h.map(str::to_owned));
    let headers = prop::collection::vec(
        prop_oneof![Just(("x-a", "1")), Just(("x-a", "2")), Just(("X-B", "1"))],
        0..=2,
    )
    .prop_map(|hs| {
        hs.into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    });
    (method, host, path, headers).prop_map(|(method, host, path, headers)| Req {
        method,
        host,
        path,
        headers,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (1) `find` agrees with the brute-force oracle; an oracle tie means compile failed.
    #[test]
    fn find_equals_oracle(specs in prop::collection::vec(spec(), 1..8), reqs in prop::collection::vec(request(), 1..16)) {
        match Table::compile(&config(&specs)) {
            Ok(table) => {
                for req in &reqs {
                    let best = naive_find(&specs, req);
                    prop_assert!(best.len() <= 1, "tie {best:?} for {req:?} but compile succeeded");
                    let want = best.first().map(|(i, _)| format!("r{i}"));
                    prop_assert_eq!(find(&table, req), want, "{:?}", req);
                }
            }
            Err(diags) => {
                for d in &diags {
                    prop_assert!(d.message.contains("equally specific"), "{:?}", d);
                }
            }
        }
        // Compile fails exactly for the pairs of equally ranked routes that share a request.
        let mut conflicts = 0;
        for (i, a) in specs.iter().enumerate() {
            for b in &specs[i + 1..] {
                if naive_rank(a) == naive_rank(b) && witness(a, b).is_some() {
                    conflicts += 1;
                }
            }
        }
        let reported = Table::compile(&config(&specs)).err().map_or(0, |d| d.len());
        prop_assert_eq!(reported, conflicts);
    }

    /// (2) Any concrete instantiation of a template matches it, with the params it was given.
    #[test]
    fn instantiations_match_their_template(
        parts in prop::collection::vec(
            prop_oneof![
                "[a-z0-9._~-]{0,6}".prop_map(|s| (s, false)),
                Just(("caf%C3%A9".to_owned(), false)),
                Just(("käse".to_owned(), false)),
                Just((String::new(), true)),
            ],
            1..5,
        ),
        values in prop::collection::vec("[A-Za-z0-9%._~:@!$&'()*+,;=-]{1,8}", 5),
        star in any::<bool>(),
        tail in "(/[a-z%0-9]{0,4}){0,3}",
    ) {
        let mut pattern = String::new();
        let mut path = String::new();
        let mut want = Vec::new();
        for (i, (lit, is_param)) in parts.iter().enumerate() {
            if *is_param {
                pattern.push_str(&format!("/{{v{i}}}"));
                path.push('/');
                path.push_str(&values[i]);
                want.push((format!("v{i}"), values[i].clone()));
            } else {
                pattern.push('/');
                pattern.push_str(lit);
                path.push('/');
                path.push_str(lit);
            }
        }
        if star {
            pattern.push_str("/*");
            path.push_str(&tail);
        }
        let spec = Spec { path: pattern, methods: vec![], host: None, headers: BTreeMap::new() };
        let table = Table::compile(&config(&[spec])).unwrap();
        let m = table.find(&Method::GET, None, &path, &HeaderMap::new());
        prop_assert!(m.is_some(), "{path}");
        let m = m.unwrap();
        let got: Vec<(String, String)> = m.params().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        prop_assert_eq!(got, want);
    }

    /// (3) Adding a strictly less specific route never changes a more specific match.
    #[test]
    fn less_specific_routes_do_not_steal(
        specs in prop::collection::vec(spec(), 1..6),
        extra in spec(),
        reqs in prop::collection::vec(request(), 1..16),
    ) {
        let Ok(before) = Table::compile(&config(&specs)) else { return Ok(()) };
        let mut more = specs.clone();
        more.push(extra.clone());
        let Ok(after) = Table::compile(&config(&more)) else { return Ok(()) };
        for req in &reqs {
            let Some(id) = find(&before, req) else { continue };
            let index: usize = id[1..].parse().unwrap();
            if naive_rank(&extra) < naive_rank(&specs[index]) {
                prop_assert_eq!(find(&after, req), Some(id));
            }
        }
    }

    /// (4) Arbitrary input never panics: neither compiling nor finding.
    #[test]
    fn never_panics(
        patterns in prop::collection::vec(".{0,12}", 0..6),
        method in "[A-Z]{1,8}",
        host in proptest::option::of(".{0,12}"),
        path in ".{0,40}",
    ) {
        let specs: Vec<Spec> = patterns
            .into_iter()
            .map(|path| Spec { path, methods: vec![], host: None, headers: BTreeMap::new() })
            .collect();
        let _ = Table::compile(&config(&specs));
        let table = super::tests::specificity_table();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let headers = HeaderMap::new();
        let _ = table.find(&method, host.as_deref(), &path, &headers);
        let _ = table.explain(&method, host.as_deref(), &path, &headers).to_string();
    }
}
