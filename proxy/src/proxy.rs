//! The request handler: one straight line from the client's request to its answer.
//!
//! Phases, in order (as pingora names them): `request_filter` (refuse what must never be
//! forwarded), `route` (which route and which upstream, from the snapshot current when the
//! request arrived), `upstream_request` (headers and target), `send`, `response_filter`.
//! A request finishes on the snapshot it started with, so a reload never fails it.
//! With a bus, a [`Probe`] follows the exchange from `route` on and publishes its events
//! (`exchange.seen`, emit rules) once the response body has gone to the client.

mod head;
mod split;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::admin::metrics::{Answered, Metrics};
use crate::config::RouteMode;
use crate::events::Publisher;
use crate::events::exchange::Probe;
use crate::forward::{self, ClientSide, ForwardError, PooledBody, ProxyBody, headers};
use crate::listen::{ClientBody, Peer};
use crate::reload::Snapshot;
use crate::rollout::{Gates, evidence};
use crate::routing::Route;
use crate::shadow;
use crate::shadow::tee::Tee;
use crate::shadow::{Mirror, Primary, Shadows, SkipReason};

use head::{content_length, request_filter, request_host};
pub use split::{BUCKETS, UserKey, in_share};

/// State every request handler shares.
#[derive(Debug)]
pub struct Shared {
    /// The live configuration; replaced whole on reload.
    snapshot: ArcSwap<Snapshot>,
    /// Request ids for requests that arrive without one.
    ids: headers::RequestIds,
    /// Tasks that outlive a request (upgraded connections).
    tasks: TaskTracker,
    /// Cancelled when the proxy stops.
    shutdown: CancellationToken,
    /// Mirroring state and findings per route (kept across reloads).
    shadows: Shadows,
    /// Where events go (started with the proxy; a reload cannot change it).
    events: Publisher,
    /// Promotion gates: evidence per route and the latest judgements.
    gates: Gates,
    /// Request counters and latency histograms for `/metrics`.
    metrics: Metrics,
}

/// Which side of a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Legacy,
    Extracted,
}

impl Shared {
    /// State starting with `snapshot`.
    pub fn new(snapshot: Snapshot, shutdown: CancellationToken) -> Self {
        let gates = Gates::default();
        let shadows = Shadows::default();
        let metrics = Metrics::default();
        metrics.sync_routes(snapshot.table.routes().iter().map(|r| &r.id));
        shadows.feed(gates.evidence().clone());
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            ids: headers::RequestIds::new(),
            tasks: TaskTracker::new(),
            shutdown,
            shadows,
            events: Publisher::disabled(),
            gates,
            metrics,
        }
    }

    /// Promotion gates: evidence per route and the latest judgements.
    pub fn gates(&self) -> &Gates {
        &self.gates
    }

    /// Request counters and latency histograms.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The same state, publishing events through `events`.
    pub fn with_events(mut self, events: Publisher) -> Self {
        self.shadows.publish_to(events.clone());
        self.events = events;
        self
    }

    /// The event publisher (a disabled one when no `[bus]` is configured).
    pub fn events(&self) -> &Publisher {
        &self.events
    }

    /// The snapshot new requests use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Makes `snapshot` the one new requests use; requests in flight keep theirs.
    pub fn install(&self, snapshot: Snapshot) {
        self.events.note_config(&snapshot.config.raw().bus);
        self.metrics
            .sync_routes(snapshot.table.routes().iter().map(|r| &r.id));
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Tasks that outlive their request (upgraded connections), for shutdown.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Answers one client request.
    ///
    /// The answer's future is boxed, once per request: hyper keeps a slot for it in every
    /// connection, idle ones included, and moves it on the way there; a pointer is cheaper
    /// to keep and to move than the whole exchange.
    pub fn handle(
        self: Arc<Self>,
        request: Request<ClientBody>,
        peer: Peer,
    ) -> Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>> {
        // A span per request at debug level: free unless someone asks for it (RUST_LOG).
        let span = tracing::debug_span!(
            "request",
            client = %peer.addr,
            correlation = tracing::field::Empty,
            route = tracing::field::Empty
        );
        Box::pin(self.handle_in_span(request, peer).instrument(span))
    }

    async fn handle_in_span(
        self: Arc<Self>,
        request: Request<ClientBody>,
        peer: Peer,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let snapshot = self.snapshot.load_full();
        let method = request.method().clone();
        let mut trail = Trail::default();
        let response = match self
            .exchange(&snapshot, request, peer, started, &mut trail)
            .await
        {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(
                    %method,
                    path = %trail.path,
                    route = trail.route.as_deref().unwrap_or("-"),
                    upstream = trail.upstream.as_deref().unwrap_or("-"),
                    cause = error.cause(),
                    error = %error,
                    "request failed"
                );
                error.into_response()
            }
        };
        tracing::debug!(
            %method,
            path = %trail.path,
            route = trail.route.as_deref().unwrap_or("-"),
            upstream = trail.upstream.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "exchange"
        );
        let answered = if trail.extracted {
            Answered::Extracted
        } else {
            Answered::Legacy
        };
        self.metrics.exchange(
            trail.route.as_deref(),
            answered,
            response.status().as_u16(),
            started.elapsed(),
        );
        if let (Some(side), Some(route)) = (trail.gated, trail.route.as_deref()) {
            self.gates.evidence().exchange(
                route,
                side,
                response.status().as_u16(),
                started.elapsed(),
            );
        }
        match trail.probe.take() {
            Some(probe) => probe.watch(response, self.events.clone()),
            None => response,
        }
    }

    async fn exchange(
        &self,
        snapshot: &Snapshot,
        mut request: Request<ClientBody>,
        peer: Peer,
        started: Instant,
        trail: &mut Trail,
    ) -> Result<Response<ProxyBody>, ForwardError> {
        // request_filter
        request_filter(&request)?;
        let client_version = request.version();
        let upgrade =
            client_version == Version::HTTP_11 && headers::is_upgrade_request(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        trail.path = parts.uri.path().to_owned();

        // route
        let host = request_host(&parts);
        let found = snapshot.table.find(
            &parts.method,
            host.as_deref(),
            parts.uri.path(),
            &parts.headers,
        );
        let correlation = headers::ensure_request_id(&mut parts.headers, &self.ids);
        let span = tracing::Span::current();
        span.record("correlation", correlation.as_str());
        let route = found.as_ref().map(|m| m.route);
        trail.route = route.map(|r| r.id.clone());
        if self.events.is_enabled() {
            let exchanges = self.events.publishes_exchanges();
            if let Some(plan) = snapshot.events.get(route, &parts.method, exchanges) {
                let params = found.iter().flat_map(|m| m.params());
                let probe = Probe::start(plan, exchanges, &correlation, &parts, params, started);
                trail.probe = Some(probe);
            }
        }
        if let Some(route) = route {
            span.record("route", &*route.id);
        }
        let bucket = route.map(|r| user_bucket(r, &parts.headers, peer.addr.ip(), &correlation));
        let side = match (route, bucket) {
            (Some(route), Some(bucket)) => choose_side(route, bucket),
            _ => Side::Legacy,
        };
        let upstream_name: &str = match (route, side) {
            (None, _) => snapshot.table.default_upstream(),
            (Some(route), Side::Extracted) => route.extracted.as_deref().unwrap_or(&route.legacy),
            (Some(route), Side::Legacy) => &route.legacy,
        };
        let upstream = snapshot
            .upstreams
            .get(upstream_name)
            .cloned()
            .ok_or_else(|| ForwardError::UnknownUpstream(upstream_name.to_owned()))?;
        trail.upstream = Some(upstream.name().clone());
        trail.extracted = side == Side::Extracted;
        if route.is_some_and(|r| r.promote.is_some()) {
            trail.gated = Some(match side {
                Side::Legacy => evidence::Side::Legacy,
                Side::Extracted => evidence::Side::Candidate,
            });
        }
        if let Some(probe) = trail.probe.as_mut() {
            probe.answered_by(upstream.name(), side == Side::Extracted);
        }
        let limit = route
            .and_then(|r| r.max_request_body)
            .unwrap_or(snapshot.default_body_limit());

        // upstream_request
        if content_length(&parts.headers).is_some_and(|length| length > limit) {
            return Err(ForwardError::BodyTooLarge { limit });
        }
        let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        headers::strip_hop_by_hop(&mut parts.headers, upgrade);
        headers::join_cookies(&mut parts.headers);
        let client = ClientSide {
            addr: peer.addr,
            proto: if peer.tls { "https" } else { "http" },
        };
        headers::add_forwarded(
            &mut parts.headers,
            client.addr.ip(),
            client.proto,
            original_host.as_ref(),
        );
        let mut mirror = match (route, bucket) {
            (Some(route), Some(bucket)) if side == Side::Legacy && !upgrade => {
                self.plan_mirror(snapshot, route, bucket, &parts, &upstream, &correlation)
            }
            _ => None,
        };
        upstream.target(&mut parts)?;
        let body = match forward::body::prepare(body, limit).await {
            Ok(body) => body,
            Err(error) => {
                if let Some(mirror) = mirror {
                    mirror.primary_failed();
                }
                return Err(match error {
                    forward::BodyError::TooLarge { limit } => ForwardError::BodyTooLarge { limit },
                    forward::BodyError::Read(_) => {
                        ForwardError::BadRequest("the request body could not be read")
                    }
                });
            }
        };
        let body = match mirror.as_mut() {
            Some(mirror) => mirror.attach_body(body),
            None => body,
        };
        let body = match trail.probe.as_mut() {
            Some(probe) => probe.request_body(body),
            None => body,
        };

        // send
        let mut response = match upstream.send(parts, body).await {
            Ok(response) => response,
            Err(error) => {
                if let Some(mirror) = mirror {
                    mirror.primary_failed();
                }
                return Err(match error {
                    ForwardError::BodyTooLarge { .. } => ForwardError::BodyTooLarge { limit },
                    other => other,
                });
            }
        };

        // response_filter: the client speaks its own version with us, whatever the upstream spoke.
        let primary_headers = mirror.as_ref().map(|_| response.headers().clone());
        *response.version_mut() = if client_version == Version::HTTP_2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let (Some(client_upgrade), Some(upstream)) =
                (client_upgrade, response.body_mut().take_upgrade())
            {
                self.splice_upgrade(client_upgrade, upstream);
            }
        } else {
            headers::strip_hop_by_hop(response.headers_mut(), false);
        }
        headers::append_via(response.headers_mut());
        let response =
            response.map(|b: PooledBody| b.map_err(forward::BoxError::from).boxed_unsync());
        Ok(match (mirror, primary_headers) {
            (Some(mirror), Some(primary_headers)) => {
                let (head, body) = response.into_parts();
                let cap = mirror.route().compare_limit();
                let (tee, captured) = Tee::new(body, cap);
                let primary = Primary {
                    status: head.status,
                    headers: primary_headers,
                    ttfb: started.elapsed(),
                    body: captured,
                };
                mirror.spawn(&self.shadows, primary);
                Response::from_parts(head, ProxyBody::new(tee))
            }
            _ => response,
        })
    }

    /// Decides whether this request is mirrored; every "no" except sampling is recorded.
    fn plan_mirror(
        &self,
        snapshot: &Snapshot,
        route: &Route,
        bucket: u32,
        parts: &http::request::Parts,
        legacy: &Arc<forward::Upstream>,
        correlation: &str,
    ) -> Option<Mirror> {
        if !matches!(route.mode, RouteMode::Shadow | RouteMode::Canary) {
            return None;
        }
        let settings = route.shadow.as_ref()?;
        let state = self.shadows.route(&route.id, settings, route.diff.as_ref());
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        if let Err(reason) =
            shadow::policy::precheck(settings, &parts.method, &parts.headers, bucket)
        {
            state.skip(reason, &parts.method, path, correlation);
            return None;
        }
        let Some(candidate) = route
            .extracted
            .as_deref()
            .and_then(|name| snapshot.upstreams.get(name))
            .cloned()
        else {
            state.skip(SkipReason::NoCandidate, &parts.method, path, correlation);
            return None;
        };
        let roll = split::roll(correlation);
        match Mirror::prepare(
            state.clone(),
            parts,
            candidate,
            Some(legacy.clone()),
            correlation,
            roll,
        ) {
            Ok(mirror) => Some(mirror),
            Err(reason) => {
                state.skip(reason, &parts.method, path, correlation);
                None
            }
        }
    }

    /// The shadow findings so far.
    pub fn shadows(&self) -> &Shadows {
        &self.shadows
    }

    /// Relays bytes both ways once both sides have switched protocols.
    fn splice_upgrade(&self, client: hyper::upgrade::OnUpgrade, upstream: forward::Upgraded) {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let client = match client.await {
                Ok(client) => client,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let forward::Upgraded {
                io: mut upstream,
                read_ahead,
            } = upstream;
            let relay = async {
                // What the upstream sent right behind its 101 reaches the client first.
                client.write_all(&read_ahead).await?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await
            };
            tokio::select! {
                result = relay => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "upgraded connection ended");
                    }
                }
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// The user's bucket for `route`, by the route's key (`canary.key`, default the client IP).
fn user_bucket(
    route: &Route,
    headers: &http::HeaderMap,
    ip: std::net::IpAddr,
    request_id: &str,
) -> u32 {
    let key = route
        .canary
        .as_ref()
        .and_then(|c| UserKey::parse(&c.key))
        .unwrap_or(UserKey::ClientIp);
    key.bucket(&route.id, headers, ip, request_id)
}

fn choose_side(route: &Route, bucket: u32) -> Side {
    match route.mode {
        RouteMode::Legacy | RouteMode::Shadow => Side::Legacy,
        RouteMode::Extracted | RouteMode::Retired => Side::Extracted,
        RouteMode::Canary => match &route.canary {
            Some(canary) if in_share(bucket, canary.percent) => Side::Extracted,
            _ => Side::Legacy,
        },
    }
}

/// What the log lines and events of an exchange name, filled in as the exchange goes.
#[derive(Default)]
struct Trail {
    path: String,
    route: Option<Arc<str>>,
    upstream: Option<Arc<str>>,
    /// Follows the exchange for its events (only when there is something to publish).
    probe: Option<Probe>,
    /// Who answered, when the route has a promotion gate that wants the evidence.
    gated: Option<evidence::Side>,
    /// Whether the new service answered (for metrics).
    extracted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without making one.
    fn future_size<A, B, C, Fut>(_: impl FnOnce(A, B, C) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn request_future_is_small() {
        // hyper keeps one per connection, idle ones included: it must be the box, not the
        // exchange.
        let size = future_size(Shared::handle);
        let boxed = future_size(Shared::handle_in_span);
        println!("Shared::handle future: {size} bytes; in its box: {boxed} bytes");
        assert!(size <= 16, "{size} bytes");
    }
}
