//! Contract tests: the same requests go to the monolith (`legacy_shim::app`, stable) and to
//! the misc service (stable), and the answers must be equal as a client sees them — status,
//! every response header, and the body bytes.
//!
//! Both apps are fresh for each table and receive the same requests in the same order, so
//! even minted `X-Request-Id`s agree. A `Case` is plain data, so one description builds the
//! request twice.

mod currency;
mod endpoints;
mod socket;
mod thumbnail;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};

use super::Options;
use super::test_support::{Reply, call};

/// The monolith, stable: fixed clock, counter ids.
pub(crate) fn legacy() -> Router {
    let options = legacy_shim::Options {
        vary: false,
        ..legacy_shim::Options::default()
    };
    legacy_shim::app(legacy_shim::Shop::new(options).unwrap())
}

/// The misc service, stable, with or without the known defect.
pub(crate) fn candidate(defect: bool) -> Router {
    super::app(Options {
        vary: false,
        defect,
        pictures: None,
    })
}

/// One request, described as data.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) method: Method,
    pub(crate) uri: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Case {
    pub(crate) fn get(uri: impl Into<String>) -> Case {
        Case::new(Method::GET, uri)
    }

    pub(crate) fn new(method: Method, uri: impl Into<String>) -> Case {
        Case {
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Vec<u8>) -> Case {
        self.body = body;
        self
    }

    fn request(&self) -> Request<Body> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(&self.uri);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder.body(Body::from(self.body.clone())).unwrap()
    }
}

/// Both answers to one case.
pub(crate) struct Pair {
    pub(crate) legacy: Reply,
    pub(crate) candidate: Reply,
}

/// Send `case` to both apps.
pub(crate) async fn both(legacy: &Router, candidate: &Router, case: &Case) -> Pair {
    Pair {
        legacy: call(legacy, case.request()).await,
        candidate: call(candidate, case.request()).await,
    }
}

/// What differs between the two answers; empty when a client could not tell them apart.
pub(crate) fn differences(pair: &Pair) -> Vec<String> {
    let (a, b) = (&pair.legacy, &pair.candidate);
    let mut out = Vec::new();
    if a.status != b.status {
        out.push(format!(
            "status: legacy {} vs candidate {}",
            a.status, b.status
        ));
    }
    let names: std::collections::BTreeSet<&str> = a
        .headers
        .keys()
        .chain(b.headers.keys())
        .map(|n| n.as_str())
        .collect();
    for name in names {
        let values = |reply: &Reply| -> Vec<String> {
            reply
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect()
        };
        let (left, right) = (values(a), values(b));
        if left != right {
            out.push(format!(
                "header {name}: legacy {left:?} vs candidate {right:?}"
            ));
        }
    }
    if a.body != b.body {
        let show = |reply: &Reply| {
            let text = String::from_utf8_lossy(&reply.body);
            let cut: String = text.chars().take(300).collect();
            format!("{} bytes: {cut:?}", reply.body.len())
        };
        out.push(format!("body: legacy {} vs candidate {}", show(a), show(b)));
    }
    out
}

/// Run every case against fresh apps and fail listing every case whose answers differ.
pub(crate) async fn assert_equal_answers(cases: &[Case]) {
    let (legacy, candidate) = (legacy(), candidate(false));
    let mut failures = Vec::new();
    for case in cases {
        let pair = both(&legacy, &candidate, case).await;
        let diff = differences(&pair);
        if !diff.is_empty() {
            failures.push(format!(
                "{} {}:\n  {}",
                case.method,
                case.uri,
                diff.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
