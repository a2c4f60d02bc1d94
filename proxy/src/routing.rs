//! Compiles the routes of `routes.toml` into a [`Table`] that the data path consults for
//! every request. A table is an immutable value: a reload compiles a new one beside the old
//! and swaps it in atomically, so a request sees one table from start to end.
//!
//! ## What a route matches
//!
//! - **Path** — the request path without its query, percent-encoded as received, split on
//!   literal `/` (an encoded `%2F` never separates). A literal segment matches when the
//!   percent-decoded bytes are equal (`/caf%C3%A9` matches `/café`; `/%61pi` matches `/api`).
//!   A trailing slash is significant: `/a` does not match `/a/`. `{name}` matches exactly one
//!   non-empty segment and captures it (still encoded). A pattern ending in `/*` is a prefix:
//!   `/misc/*` matches `/misc`, `/misc/` and anything under `/misc/`, never `/miscellaneous`.
//! - **Methods** — an empty list means all; names are compared in upper case.
//! - **Host** — case-insensitive, ignoring a `:port` and a trailing dot in the Host header.
//! - **Headers** — every listed header must be present once with exactly that value (names
//!   are case-insensitive; a repeated header is a list and equals no single value).
//!
//! ## Specificity: the most specific match wins
//!
//! Routes are ranked by a total order; file order never decides.
//! 1. Paths compare position by position; the first difference decides: a literal segment
//!    beats a `{param}`, which beats a trailing `*`. So `/api/products/featured` beats
//!    `/api/products/{id}`, which beats `/api/products/*`, and `/api/orders/*` beats `/api/*`.
//! 2. An exact path beats a prefix with the same literal part (`/misc` beats `/misc/*`).
//! 3. Then a route with a `host` beats one without.
//! 4. Then a route with `methods` beats one allowing all methods.
//! 5. Then more `headers` conditions beat fewer.
//!
//! Two routes of equal rank that can match the same request are a compile error naming both
//! and an example request. Equal rank is fine when they can never meet: different literal
//! segments, disjoint `methods`, different hosts or different values of one header.
//!
//! ## Lookup
//!
//! Routes are kept in precedence order and the first match wins. An index by the (decoded)
//! first path segment skips the routes whose first literal differs; the request path is split
//! once, on the stack. [`Table::find`] does not allocate: parameters are located again in the
//! request path when asked for. `benches/routing.rs` (50 routes) measured 30–130 ns a lookup
//! on a busy 2-core machine, against 250–370 ns for a scan of every route.

mod explain;
mod overlap;
mod pattern;
mod route;

use std::sync::Arc;

use http::{HeaderMap, Method};

pub use explain::{Considered, Destination, Explanation, Outcome};
use pattern::RequestPath;
use route::Miss;
pub use route::Route;

use crate::config::{Diagnostic, RawConfig};

/// The compiled, immutable route table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Routes in precedence order, most specific first.
    routes: Box<[Route]>,
    /// Where unmatched requests go.
    default_upstream: Arc<str>,
    /// Candidate routes by first path segment.
    index: FirstSegment,
}

/// Route indices (into the precedence-ordered routes) by decoded first literal segment. Each
/// bucket also holds the routes that start with a `{param}` or `*`, merged in order.
#[derive(Debug, Clone, Default)]
struct FirstSegment {
    /// Sorted by key, for binary search.
    buckets: Box<[Bucket]>,
    /// Routes starting with a `{param}` or `*`: the candidates when no bucket fits.
    others: Box<[u32]>,
    /// Every route: the candidates when the first segment is too long to decode on the stack.
    all: Box<[u32]>,
}

/// The candidates for one first segment.
#[derive(Debug, Clone)]
struct Bucket {
    /// The decoded first literal segment.
    key: Box<[u8]>,
    /// Routes starting with that literal, a `{param}` or `*`, in precedence order.
    routes: Box<[u32]>,
}

/// A route chosen for a request, with its captured path parameters.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'t, 'p> {
    /// The chosen route.
    pub route: &'t Route,
    /// The request path after its leading `/`, without the query.
    rest: &'p str,
}

// === impl Table ===

impl Table {
    /// Compiles the routes of a validated config. Overlapping routes of equal specificity are
    /// errors (key `routes[i].match`) naming both routes and a request both would match.
    pub fn compile(raw: &RawConfig) -> Result<Table, Vec<Diagnostic>> {
        let default_upstream: Arc<str> = raw.default_upstream.as_str().into();
        let mut diags = Vec::new();
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, config) in raw.routes.iter().enumerate() {
            match Route::compile(i, config, &default_upstream) {
                Ok(route) => routes.push(route),
                Err(mut d) => diags.append(&mut d),
            }
        }
        routes.sort_by(precedence);
        diags.extend(overlap::conflicts(&routes));
        if !diags.is_empty() {
            return Err(diags);
        }
        let index = FirstSegment::build(&routes);
        Ok(Table {
            routes: routes.into(),
            default_upstream,
            index,
        })
    }

    /// The most specific route matching this request, or `None` (the default upstream
    /// answers). `path` is the request path as received; a query, if present, is ignored.
    /// `host` is the Host header (or the URI authority), a `:port` allowed.
    pub fn find<'t, 'p>(
        &'t self,
        method: &Method,
        host: Option<&str>,
        path: &'p str,
        headers: &HeaderMap,
    ) -> Option<RouteMatch<'t, 'p>> {
        let rest = request_rest(path)?;
        let split = RequestPath::new(rest);
        let (candidates, first_known) = self.candidates(split.first());
        candidates
            .iter()
            .filter_map(|&i| self.routes.get(i as usize))
            .find(|route| {
                route
                    .matcher
                    .check(method, host, &split, first_known, headers)
                    .is_none()
            })
            .map(|route| RouteMatch { route, rest })
    }

    /// Why a request would take the route it takes: every route in precedence order, with
    /// the reason it matched or not, and the upstream(s) the outcome implies.
    pub fn explain(
        &self,
        method: &Method,
        host: Option<&str>,
        path: &str,
        headers: &HeaderMap,
    ) -> Explanation {
        let mut request = format!("{method} {path}");
        if let Some(host) = host {
            request.push_str(&format!(" (host {host})"));
        }
        let rest = request_rest(path);
        let mut chosen: Option<&Route> = None;
        let mut considered = Vec::with_capacity(self.routes.len());
        for route in &*self.routes {
            let miss = match rest {
                Some(rest) => {
                    route
                        .matcher
                        .check(method, host, &RequestPath::new(rest), false, headers)
                }
                None => Some(Miss::Path),
            };
            let outcome = match (miss, chosen) {
                (None, None) => {
                    chosen = Some(route);
                    Outcome::Chosen
                }
                (None, Some(winner)) => Outcome::Outranked {
                    by: winner.id.clone(),
                },
                (Some(miss), _) => outcome(route, miss),
            };
            considered.push(Considered {
                id: route.id.clone(),
                matcher: route.describe(),
                outcome,
            });
        }
        let params = match (chosen, rest) {
            (Some(route), Some(rest)) => RouteMatch { route, rest }
                .params()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        Explanation {
            request,
            considered,
            chosen: chosen.map(|r| r.id.clone()),
            mode: chosen.map(|r| r.mode),
            params,
            destination: chosen.map_or_else(
                || Destination::Default {
                    upstream: self.default_upstream.clone(),
                },
                Destination::of,
            ),
        }
    }

    /// All routes, in precedence order (most specific first).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route with this id.
    pub fn route(&self, id: &str) -> Option<&Route> {
        self.routes.iter().find(|r| &*r.id == id)
    }

    /// The upstream that answers requests no route matches.
    pub fn default_upstream(&self) -> &str {
        &self.default_upstream
    }

    /// The routes that may match a request whose path starts with `first`, in precedence
    /// order, and whether a literal first segment of theirs is known to match.
    fn candidates(&self, first: &str) -> (&[u32], bool) {
        let mut buf = [0; 64];
        let Some(key) = index_key(first, &mut buf) else {
            return (&self.index.all, false);
        };
        match self
            .index
            .buckets
            .binary_search_by(|b| key_order(&b.key, key))
        {
            Ok(at) => (
                self.index.buckets.get(at).map_or(&[][..], |b| &b.routes),
                true,
            ),
            Err(_) => (&self.index.others, false),
        }
    }
}

/// The precedence order: most specific first, then a deterministic tiebreak among routes
/// that can never match the same request.
fn precedence(a: &Route, b: &Route) -> std::cmp::Ordering {
    b.specificity
        .cmp(&a.specificity)
        .then_with(|| {
            a.matcher
                .path
                .literal_key()
                .cmp(b.matcher.path.literal_key())
        })
        .then_with(|| a.matcher.host.cmp(&b.matcher.host))
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.index.cmp(&b.index))
}

/// The request path after its leading `/`, without a query; `None` if it is not a path.
fn request_rest(path: &str) -> Option<&str> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path.strip_prefix('/')
}

/// The decoded first segment, as an index key: borrowed when nothing needs decoding,
/// else decoded into `buf`; `None` if it does not fit.
fn index_key<'a>(first: &'a str, buf: &'a mut [u8; 64]) -> Option<&'a [u8]> {
    if !first.contains('%') {
        return Some(first.as_bytes());
    }
    let mut len = 0;
    for byte in pattern::decode(first.as_bytes()) {
        *buf.get_mut(len)? = byte;
        len += 1;
    }
    buf.get(..len)
}

/// The order of index keys: by length first, so most comparisons need no byte compare.
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.iter().cmp(b))
}

fn outcome(route: &Route, miss: Miss) -> Outcome {
    let m = &route.matcher;
    match miss {
        Miss::Path => Outcome::PathDiffers,
        Miss::Method => Outcome::MethodNotAllowed {
            allowed: m.methods.names().collect(),
        },
        Miss::Host => Outcome::HostDiffers {
            wanted: m.host.as_deref().unwrap_or("").to_owned(),
        },
        Miss::Header(i) => {
            let (name, wanted) = m.headers.get(i).map_or_else(
                || (String::new(), String::new()),
                |(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                },
            );
            Outcome::HeaderDiffers { name, wanted }
        }
    }
}

// === impl FirstSegment ===

impl FirstSegment {
    fn build(routes: &[Route]) -> Self {
        let mut keys: Vec<&[u8]> = routes
            .iter()
            .filter_map(|r| r.matcher.path.first_literal())
            .collect();
        keys.sort_unstable_by(|a, b| key_order(a, b));
        keys.dedup();
        let numbered = || (0u32..).zip(routes);
        let others = numbered()
            .filter(|(_, r)| r.matcher.path.first_literal().is_none())
            .map(|(i, _)| i)
            .collect();
        let buckets = keys
            .into_iter()
            .map(|key| {
                let routes = numbered()
                    .filter(|(_, r)| r.matcher.path.first_literal().is_none_or(|k| k == key))
                    .map(|(i, _)| i)
                    .collect();
                Bucket {
                    key: key.into(),
                    routes,
                }
            })
            .collect();
        let all = numbered().map(|(i, _)| i).collect();
        Self {
            buckets,
            others,
            all,
        }
    }
}

// === impl RouteMatch ===

impl<'t, 'p> RouteMatch<'t, 'p> {
    /// The value captured for `{name}`, as received (still percent-encoded).
    pub fn param(&self, name: &str) -> Option<&'p str> {
        let (_, at) = self
            .route
            .matcher
            .path
            .params()
            .iter()
            .find(|(n, _)| &**n == name)?;
        self.rest.split('/').nth(*at)
    }

    /// Every captured parameter, in path order, as `(name, value)`.
    pub fn params(&self) -> impl Iterator<Item = (&'t str, &'p str)> + use<'t, 'p> {
        let mut segments = self.rest.split('/').enumerate();
        self.route
            .matcher
            .path
            .params()
            .iter()
            .filter_map(move |(name, at)| {
                let (_, value) = segments.by_ref().find(|(i, _)| i == at)?;
                Some((&**name, value))
            })
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
