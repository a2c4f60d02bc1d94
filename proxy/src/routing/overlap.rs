//! Compile-time ambiguity check: two routes of equal specificity that can match the same
//! request would leave the choice to file order, which never decides — so that is an error,
//! reported with an example request both would take.

use super::route::Route;
use crate::config::Diagnostic;

/// A request that two routes would both match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Example {
    method: String,
    host: Option<String>,
    path: String,
    headers: Vec<(String, String)>,
}

impl std::fmt::Display for Example {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(host) = &self.host {
            write!(f, " with Host: {host}")?;
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let lead = if i == 0 && self.host.is_none() {
                " with"
            } else {
                ","
            };
            write!(f, "{lead} {name}: {value}")?;
        }
        Ok(())
    }
}

/// Diagnostics for every pair of equally specific routes that can match one request.
/// `routes` must be in precedence order, so equally specific routes are adjacent.
pub(crate) fn conflicts(routes: &[Route]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for group in routes.chunk_by(|a, b| a.specificity == b.specificity) {
        for (i, a) in group.iter().enumerate() {
            for b in group.iter().skip(i + 1) {
                if let Some(example) = overlap(a, b) {
                    diags.push(diagnostic(a, b, &example));
                }
            }
        }
    }
    diags
}

/// A request both routes match, if one exists. Only meaningful for routes of equal
/// specificity (same path shape, same kinds of conditions).
pub(crate) fn overlap(a: &Route, b: &Route) -> Option<Example> {
    let (ma, mb) = (&a.matcher, &b.matcher);
    if !ma.path.same_literals(&mb.path) {
        return None;
    }
    if ma.host != mb.host {
        return None;
    }
    let method = ma.methods.common(&mb.methods)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in ma.headers.iter().chain(&*mb.headers) {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.iter().find(|(n, _)| n == name.as_str()) {
            Some((_, existing)) if *existing != value => return None,
            Some(_) => {}
            None => headers.push((name.as_str().to_owned(), value)),
        }
    }
    Some(Example {
        method,
        host: a.match_config().host.clone(),
        path: ma.path.example(),
        headers,
    })
}

fn diagnostic(a: &Route, b: &Route, example: &Example) -> Diagnostic {
    // Report at the one that comes later in the file; name the other by id and position.
    let (first, second) = if a.index <= b.index { (a, b) } else { (b, a) };
    Diagnostic::new(
        format!("routes[{}].match", second.index),
        format!(
            "routes `{}` and `{}` (routes[{}]) are equally specific and both match {example}; \
             file order never decides which one wins",
            second.id, first.id, first.index
        ),
    )
    .hint(
        "make one of them more specific (a literal path segment instead of `{param}` or `*`, \
         a `host`, a `methods` list, or another `headers` condition), or make them disjoint \
         (e.g. different `methods` or different header values)",
    )
}
