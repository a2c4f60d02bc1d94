//! What each route's exchanges publish, decided once per configuration so the data path only
//! reads a flag when there is nothing to do (no bus, or a route that opted out and has no
//! emit rules).

use std::sync::Arc;

use http::{HeaderName, Method};

use crate::config::{Diagnostic, RawConfig, RouteConfig, RouteEvents, RouteMode};
use crate::events::emit::{self, RuleView, Rules, Source};
use crate::routing::Route;

/// Headers an exchange event carries when the route names none.
pub const DEFAULT_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "location",
    "x-request-id",
];

/// Most bytes of each body an exchange event carries when `events.max_body` is not set.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024;

/// The plans of every route of one configuration.
#[derive(Debug)]
pub struct Plans {
    /// By position in the file's `[[routes]]`.
    routes: Box<[Arc<RoutePlan>]>,
    /// For requests no route takes.
    unrouted: Arc<RoutePlan>,
}

/// What the exchanges of one route (or the unrouted ones) capture and publish.
#[derive(Debug)]
pub struct RoutePlan {
    /// The route id; `None` for unrouted exchanges.
    pub(super) route: Option<Arc<str>>,
    /// The route's mode.
    pub(super) mode: Option<RouteMode>,
    /// The route's `match.path`.
    pub(super) template: Option<Arc<str>>,
    /// Whether the route publishes its exchanges (its `events` is not `false`); the running
    /// publisher's `[bus] exchanges` has the last word.
    pub(super) exchanges: bool,
    /// The header allow-list of exchange events.
    pub(super) headers: Box<[HeaderName]>,
    /// Body copy cap when exchange events carry bodies.
    pub(super) bodies: Option<usize>,
    /// The route's emit rules.
    pub(super) rules: Rules,
    /// Request headers some rule reads.
    pub(super) rule_request_headers: Box<[HeaderName]>,
    /// Response headers some rule reads.
    pub(super) rule_response_headers: Box<[HeaderName]>,
}

impl Plans {
    /// Plans for `raw` (already validated); tallies of unchanged rules carry over from
    /// `previous`. Fails only on rules validation would have refused.
    pub fn compile(raw: &RawConfig, previous: Option<&Plans>) -> Result<Self, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, route) in raw.routes.iter().enumerate() {
            let before = previous.and_then(|p| {
                p.routes
                    .iter()
                    .find(|r| r.route.as_deref() == Some(&*route.id))
            });
            match RoutePlan::compile(route, before.map(|p| &p.rules)) {
                Ok(plan) => routes.push(Arc::new(plan)),
                Err(problems) => diags.extend(problems.into_iter().map(|p| {
                    Diagnostic::new(format!("routes[{i}].emit[{}]", p.rule), p.message).hint(p.hint)
                })),
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let unrouted = RoutePlan {
            route: None,
            mode: None,
            template: None,
            exchanges: true,
            headers: default_headers(),
            bodies: None,
            rules: Rules::default(),
            rule_request_headers: Box::default(),
            rule_response_headers: Box::default(),
        };
        Ok(Self {
            routes: routes.into(),
            unrouted: Arc::new(unrouted),
        })
    }

    /// The plan of an exchange taken by `route` (or unrouted) with `method`, if it has
    /// anything to publish; `exchanges` is the running publisher's `[bus] exchanges`.
    pub fn get(
        &self,
        route: Option<&Route>,
        method: &Method,
        exchanges: bool,
    ) -> Option<&Arc<RoutePlan>> {
        let plan = match route {
            None => &self.unrouted,
            Some(route) => self
                .routes
                .get(route.file_index())
                .filter(|p| p.route.as_deref() == Some(&*route.id))?,
        };
        let wanted =
            (exchanges && plan.exchanges) || plan.rules.iter().any(|r| r.wants_method(method));
        wanted.then_some(plan)
    }

    /// The tallies of every emit rule, in file order.
    pub fn rule_views(&self) -> Vec<RuleView> {
        self.routes
            .iter()
            .flat_map(|p| p.rules.views(p.route.as_deref().unwrap_or_default()))
            .collect()
    }
}

impl RoutePlan {
    fn compile(
        route: &RouteConfig,
        previous: Option<&Rules>,
    ) -> Result<Self, Vec<emit::RuleProblem>> {
        let params = emit::template_params(&route.matcher.path);
        let rules = Rules::compile(&route.emit, &params, previous)?;
        let (enabled, settings) = match &route.events {
            Some(RouteEvents::Enabled(on)) => (*on, None),
            Some(RouteEvents::Settings(settings)) => (true, Some(settings)),
            None => (true, None),
        };
        let headers = match settings.and_then(|s| s.headers.as_ref()) {
            Some(names) => {
                // A name listed twice is kept once, where it first appears.
                let mut parsed: Vec<HeaderName> = Vec::with_capacity(names.len());
                for name in names {
                    if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                        if !parsed.contains(&name) {
                            parsed.push(name);
                        }
                    }
                }
                parsed.into()
            }
            None => default_headers(),
        };
        let bodies = settings.filter(|s| s.bodies).map(|s| {
            s.max_body.map_or(DEFAULT_MAX_BODY, |b| {
                usize::try_from(b.bytes()).unwrap_or(usize::MAX)
            })
        });
        let mut request_headers = Vec::new();
        let mut response_headers = Vec::new();
        for source in rules.iter().flat_map(|r| r.sources()) {
            match source {
                Source::Header(name) if !request_headers.contains(name) => {
                    request_headers.push(name.clone());
                }
                Source::ResponseHeader(name) if !response_headers.contains(name) => {
                    response_headers.push(name.clone());
                }
                _ => {}
            }
        }
        Ok(Self {
            route: Some(route.id.as_str().into()),
            mode: Some(route.mode),
            template: Some(route.matcher.path.as_str().into()),
            exchanges: enabled,
            headers,
            bodies,
            rules,
            rule_request_headers: request_headers.into(),
            rule_response_headers: response_headers.into(),
        })
    }

    /// Whether some rule that `method` can fire reads the request (or, with `false`, the
    /// response) body.
    pub(super) fn rules_read_body(&self, method: &Method, request: bool) -> bool {
        self.rules
            .iter()
            .filter(|r| r.wants_method(method))
            .flat_map(|r| r.sources())
            .any(|s| match s {
                Source::Request(_) => request,
                Source::Response(_) => !request,
                _ => false,
            })
    }
}

fn default_headers() -> Box<[HeaderName]> {
    DEFAULT_HEADERS
        .iter()
        .map(|n| HeaderName::from_static(n))
        .collect()
}
