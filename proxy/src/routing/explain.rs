//! `strangler routes --explain METHOD PATH`: why a request takes the route it takes. Every
//! route is listed in precedence order with the reason it matched or not, followed by the
//! decision and the upstream(s) the chosen mode implies. Off the hot path: allocates freely.

use std::fmt;
use std::sync::Arc;

use crate::config::RouteMode;

/// The answer to "where would this request go, and why?".
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The request as explained: `GET /path` plus the host, if given.
    pub request: String,
    /// Every route, in precedence order, with what it made of the request.
    pub considered: Vec<Considered>,
    /// The chosen route's id; `None` means the default upstream answers.
    pub chosen: Option<Arc<str>>,
    /// The chosen route's mode, if a route was chosen.
    pub mode: Option<RouteMode>,
    /// Parameters the chosen route captured, as received (still percent-encoded).
    pub params: Vec<(String, String)>,
    /// Who answers, and where copies go.
    pub destination: Destination,
}

/// One route as seen by the explained request.
#[derive(Debug, Clone, PartialEq)]
pub struct Considered {
    /// The route's id.
    pub id: Arc<str>,
    /// The route's predicate in one line (`GET,POST /api/{id} host=h x-a=1`).
    pub matcher: String,
    /// Whether and why it matched.
    pub outcome: Outcome,
}

/// What one route made of the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It matched and, being the most specific match, takes the request.
    Chosen,
    /// It matched, but a more specific route came first.
    Outranked {
        /// The route that takes the request.
        by: Arc<str>,
    },
    /// The path does not fit the route's pattern.
    PathDiffers,
    /// The method is not one of the route's `methods`.
    MethodNotAllowed {
        /// The route's methods.
        allowed: Vec<String>,
    },
    /// The route requires another host.
    HostDiffers {
        /// The host the route requires.
        wanted: String,
    },
    /// A required header is missing or has another value.
    HeaderDiffers {
        /// The header's name (lower case).
        name: String,
        /// The value the route requires.
        wanted: String,
    },
}

/// Who answers the request, and where a copy goes, by the chosen route's mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// No route matched: the default upstream answers.
    Default {
        /// The default upstream's name.
        upstream: Arc<str>,
    },
    /// `legacy`: the monolith answers.
    Legacy {
        /// The legacy upstream.
        legacy: Arc<str>,
    },
    /// `shadow`: the monolith answers; a sampled copy goes to the new service.
    Shadow {
        /// The upstream that answers.
        legacy: Arc<str>,
        /// The upstream that gets the copy.
        extracted: Option<Arc<str>>,
        /// Share of users mirrored, 0.0 to 1.0.
        sample: f64,
    },
    /// `canary`: the new service answers `percent`% of users (by `key`); the others get the
    /// monolith, shadowed.
    Canary {
        /// The upstream answering the canary share.
        extracted: Option<Arc<str>>,
        /// The upstream answering the others.
        legacy: Arc<str>,
        /// Share of users, 0 to 100.
        percent: f64,
        /// What identifies a user (`ip`, `header:NAME`, `cookie:NAME`, `request_id`).
        key: String,
    },
    /// `extracted` or `retired`: the new service answers.
    Extracted {
        /// The upstream that answers.
        extracted: Option<Arc<str>>,
        /// Whether the route is `retired` (the monolith is never asked).
        retired: bool,
    },
}

impl Destination {
    /// Where a route in `mode` sends requests.
    pub(crate) fn of(route: &super::Route) -> Self {
        let legacy = route.legacy.clone();
        let extracted = route.extracted.clone();
        match route.mode {
            RouteMode::Legacy => Self::Legacy { legacy },
            RouteMode::Shadow => Self::Shadow {
                legacy,
                extracted,
                sample: route.shadow.as_ref().map_or(1.0, |s| s.sample),
            },
            RouteMode::Canary => Self::Canary {
                extracted,
                legacy,
                percent: route.canary.as_ref().map_or(0.0, |c| c.percent),
                key: route
                    .canary
                    .as_ref()
                    .map_or_else(|| "ip".to_owned(), |c| c.key.clone()),
            },
            RouteMode::Extracted => Self::Extracted {
                extracted,
                retired: false,
            },
            RouteMode::Retired => Self::Extracted {
                extracted,
                retired: true,
            },
        }
    }
}

/// A share for people: `10`, `2.5`, `0.25` (at most two decimals, no trailing zeros).
fn share(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn name(upstream: &Option<Arc<str>>) -> &str {
    upstream.as_deref().unwrap_or("(no extracted upstream)")
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default { upstream } => write!(f, "default upstream `{upstream}` answers"),
            Self::Legacy { legacy } => write!(f, "legacy `{legacy}` answers"),
            Self::Shadow {
                legacy,
                extracted,
                sample,
            } => write!(
                f,
                "legacy `{legacy}` answers; a copy goes to `{}` for {}% of users",
                name(extracted),
                share(sample * 100.0)
            ),
            Self::Canary {
                extracted,
                legacy,
                percent,
                key,
            } => write!(
                f,
                "extracted `{}` answers {}% of users (by {key}); the others get legacy \
                 `{legacy}`, shadowed to `{}`",
                name(extracted),
                share(*percent),
                name(extracted)
            ),
            Self::Extracted { extracted, .. } => {
                write!(f, "extracted `{}` answers", name(extracted))
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chosen => f.write_str("MATCH, chosen"),
            Self::Outranked { by } => write!(f, "matches too, but `{by}` is more specific"),
            Self::PathDiffers => f.write_str("no: path differs"),
            Self::MethodNotAllowed { allowed } => {
                write!(f, "no: method not in {}", allowed.join(","))
            }
            Self::HostDiffers { wanted } => write!(f, "no: host is not {wanted}"),
            Self::HeaderDiffers { name, wanted } => write!(f, "no: header {name} is not {wanted}"),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.request)?;
        let id_width = self
            .considered
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(0);
        let matcher_width = self
            .considered
            .iter()
            .map(|c| c.matcher.len())
            .max()
            .unwrap_or(0);
        for (i, c) in self.considered.iter().enumerate() {
            writeln!(
                f,
                "  {:>2}. {:<id_width$}  {:<matcher_width$}  {}",
                i + 1,
                c.id,
                c.matcher,
                c.outcome
            )?;
        }
        match (&self.chosen, self.mode) {
            (Some(id), Some(mode)) => {
                write!(f, "=> route `{id}` ({mode})")?;
                if !self.params.is_empty() {
                    let params: Vec<String> = self
                        .params
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    write!(f, " with {}", params.join(", "))?;
                }
                write!(f, ": {}", self.destination)
            }
            _ => write!(f, "=> no route matches: {}", self.destination),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method};

    use super::*;
    use crate::routing::Table;
    use crate::routing::tests::{route, table};

    fn explain_table() -> Table {
        table(
            &[
                route("product", "/api/products/{id}", ", methods = [\"GET\"]"),
                route("api", "/api/*", ""),
                "[[routes]]\nid = \"misc\"\nmode = \"canary\"\nextracted = \"new\"\n\
             canary = { percent = 10, key = \"cookie:session\" }\nmatch = { path = \"/misc/*\" }\n"
                    .to_owned(),
            ]
            .concat(),
        )
    }

    #[test]
    fn explain_a_match() {
        let t = explain_table();
        let e = t.explain(&Method::GET, None, "/api/products/42", &HeaderMap::new());
        assert_eq!(e.chosen.as_deref(), Some("product"));
        assert_eq!(e.mode, Some(RouteMode::Extracted));
        assert_eq!(e.params, [("id".to_owned(), "42".to_owned())]);
        let outcomes: Vec<(&str, &Outcome)> =
            e.considered.iter().map(|c| (&*c.id, &c.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("product", &Outcome::Chosen),
                (
                    "api",
                    &Outcome::Outranked {
                        by: "product".into()
                    }
                ),
                ("misc", &Outcome::PathDiffers),
            ]
        );
        let text = e.to_string();
        assert!(
            text.contains("=> route `product` (extracted) with id=42: extracted `new` answers"),
            "{text}"
        );
        assert!(text.contains("`product` is more specific"), "{text}");
    }

    #[test]
    fn explain_a_method_mismatch() {
        let t = explain_table();
        let e = t.explain(
            &Method::DELETE,
            Some("shop.example"),
            "/api/products/42",
            &HeaderMap::new(),
        );
        assert_eq!(e.chosen.as_deref(), Some("api"));
        assert_eq!(
            e.considered[0].outcome,
            Outcome::MethodNotAllowed {
                allowed: vec!["GET".to_owned()]
            }
        );
        let text = e.to_string();
        assert!(
            text.starts_with("DELETE /api/products/42 (host shop.example)"),
            "{text}"
        );
        assert!(text.contains("no: method not in GET"), "{text}");
    }

    #[test]
    fn shares_read_well() {
        assert_eq!(share(100.0), "100");
        assert_eq!(share(7.000000000000001), "7");
        assert_eq!(share(2.5), "2.5");
        assert_eq!(share(0.25), "0.25");
        assert_eq!(share(0.0), "0");
    }

    #[test]
    fn explain_canary_and_default() {
        let t = explain_table();
        let e = t.explain(&Method::GET, None, "/misc/rates", &HeaderMap::new());
        let text = e.to_string();
        assert!(
            text.contains("extracted `new` answers 10% of users (by cookie:session); the others get legacy `legacy`"),
            "{text}"
        );

        let e = t.explain(&Method::GET, None, "/checkout", &HeaderMap::new());
        assert_eq!(e.chosen, None);
        assert_eq!(
            e.destination,
            Destination::Default {
                upstream: "legacy".into()
            }
        );
        assert!(
            e.considered
                .iter()
                .all(|c| c.outcome == Outcome::PathDiffers)
        );
        let text = e.to_string();
        assert!(
            text.ends_with("=> no route matches: default upstream `legacy` answers"),
            "{text}"
        );
    }
}
