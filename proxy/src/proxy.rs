//! The request handler: one straight line from the client's request to its answer.
//!
//! Phases, in order (as pingora names them): `request_filter` (refuse what must never be
//! forwarded), `route` (which route and which upstream, from the snapshot current when the
//! request arrived), `upstream_request` (headers and target), `send`, `response_filter`.
//! A request finishes on the snapshot it started with, so a reload never fails it.

mod split;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RouteMode;
use crate::forward::{self, ClientSide, ForwardError, ProxyBody, headers};
use crate::listen::Peer;
use crate::reload::Snapshot;

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
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            ids: headers::RequestIds::new(),
            tasks: TaskTracker::new(),
            shutdown,
        }
    }

    /// The snapshot new requests use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Makes `snapshot` the one new requests use; requests in flight keep theirs.
    pub fn install(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Tasks that outlive their request (upgraded connections), for shutdown.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Answers one client request.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: Peer,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let snapshot = self.snapshot.load_full();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let (result, route, upstream) = self.exchange(&snapshot, request, peer).await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                let error = match error {
                    ForwardError::BodyTooLarge { limit: 0 } => ForwardError::BodyTooLarge {
                        limit: snapshot.default_body_limit(),
                    },
                    other => other,
                };
                tracing::warn!(%method, %path, route = route.as_deref().unwrap_or("-"), upstream = upstream.as_deref().unwrap_or("-"), cause = error.cause(), error = %error, "request failed");
                error.into_response()
            }
        };
        tracing::debug!(
            %method, %path,
            route = route.as_deref().unwrap_or("-"),
            upstream = upstream.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "exchange"
        );
        response
    }

    async fn exchange(
        &self,
        snapshot: &Snapshot,
        mut request: Request<Incoming>,
        peer: Peer,
    ) -> (
        Result<Response<ProxyBody>, ForwardError>,
        Option<Arc<str>>,
        Option<Arc<str>>,
    ) {
        // request_filter
        if let Err(e) = request_filter(&request) {
            return (Err(e), None, None);
        }
        let client_version = request.version();
        let upgrade =
            request.version() == Version::HTTP_11 && headers::is_upgrade_request(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();

        // route
        let host = request_host(&parts);
        let found = snapshot.table.find(
            &parts.method,
            host.as_deref(),
            parts.uri.path(),
            &parts.headers,
        );
        let correlation = headers::ensure_request_id(&mut parts.headers, &self.ids);
        let (route_id, upstream_name, limit) = match &found {
            None => (
                None,
                snapshot.table.default_upstream().to_owned(),
                snapshot.default_body_limit(),
            ),
            Some(m) => {
                let route = m.route;
                let side = choose_side(route, &parts.headers, peer.addr.ip(), &correlation);
                let name = match (side, &route.extracted) {
                    (Side::Extracted, Some(extracted)) => extracted.to_string(),
                    _ => route.legacy.to_string(),
                };
                (
                    Some(route.id.clone()),
                    name,
                    route
                        .max_request_body
                        .unwrap_or(snapshot.default_body_limit()),
                )
            }
        };
        let Some(upstream) = snapshot.upstreams.get(&upstream_name).cloned() else {
            return (
                Err(ForwardError::UnknownUpstream(upstream_name)),
                route_id,
                None,
            );
        };
        let upstream_id = Some(upstream.name().clone());

        // upstream_request
        if let Some(length) = content_length(&parts.headers) {
            if length > limit {
                return (
                    Err(ForwardError::BodyTooLarge { limit }),
                    route_id,
                    upstream_id,
                );
            }
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
        if let Err(e) = upstream.target(&mut parts) {
            return (Err(e), route_id, upstream_id);
        }
        let body = match forward::body::prepare(body, limit).await {
            Ok(b) => b,
            Err(forward::BodyError::TooLarge { limit }) => {
                return (
                    Err(ForwardError::BodyTooLarge { limit }),
                    route_id,
                    upstream_id,
                );
            }
            Err(forward::BodyError::Read(_)) => {
                return (
                    Err(ForwardError::BadRequest(
                        "the request body could not be read",
                    )),
                    route_id,
                    upstream_id,
                );
            }
        };

        // send
        let mut response = match upstream.send(parts, body).await {
            Ok(r) => r,
            Err(ForwardError::BodyTooLarge { .. }) => {
                return (
                    Err(ForwardError::BodyTooLarge { limit }),
                    route_id,
                    upstream_id,
                );
            }
            Err(e) => return (Err(e), route_id, upstream_id),
        };

        // response_filter: the client speaks its own version with us, whatever the upstream spoke.
        *response.version_mut() = if client_version == Version::HTTP_2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_upgrade) = client_upgrade {
                self.splice_upgrade(client_upgrade, hyper::upgrade::on(&mut response));
            }
            headers::append_via(response.headers_mut());
        } else {
            headers::strip_hop_by_hop(response.headers_mut(), false);
            headers::append_via(response.headers_mut());
        }
        (
            Ok(response.map(|b: Incoming| b.map_err(forward::BoxError::from).boxed_unsync())),
            route_id,
            upstream_id,
        )
    }

    /// Relays bytes both ways once both sides have switched protocols.
    fn splice_upgrade(
        &self,
        client: hyper::upgrade::OnUpgrade,
        upstream: hyper::upgrade::OnUpgrade,
    ) {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let (client, upstream) = match tokio::try_join!(client, upstream) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            tokio::select! {
                result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "upgraded connection ended");
                    }
                }
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// Refuses requests that must never be forwarded (DESIGN.md; HTTP-EDGE.md).
fn request_filter(request: &Request<Incoming>) -> Result<(), ForwardError> {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Err(ForwardError::BadRequest("more than one Host header"));
    }
    if request.version() == Version::HTTP_11 && hosts == 0 {
        return Err(ForwardError::BadRequest("HTTP/1.1 request without Host"));
    }
    if let (Some(authority), Some(host)) = (
        request.uri().authority(),
        request.headers().get(header::HOST),
    ) {
        if request.version() <= Version::HTTP_11
            && !authority
                .as_str()
                .eq_ignore_ascii_case(host.to_str().unwrap_or_default())
        {
            return Err(ForwardError::BadRequest(
                "absolute-form target and Host disagree",
            ));
        }
    }
    if request.headers().contains_key(header::TRANSFER_ENCODING)
        && request.headers().contains_key(header::CONTENT_LENGTH)
    {
        return Err(ForwardError::BadRequest(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    Ok(())
}

/// The Host the client asked for, without port, lower-case.
fn request_host(parts: &http::request::Parts) -> Option<String> {
    let raw = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))?;
    let without_port = match raw.rsplit_once(':') {
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => raw,
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => raw,
    };
    Some(without_port.to_ascii_lowercase())
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn choose_side(
    route: &crate::routing::Route,
    headers: &http::HeaderMap,
    ip: std::net::IpAddr,
    request_id: &str,
) -> Side {
    match route.mode {
        RouteMode::Legacy | RouteMode::Shadow => Side::Legacy,
        RouteMode::Extracted | RouteMode::Retired => Side::Extracted,
        RouteMode::Canary => {
            let Some(canary) = &route.canary else {
                return Side::Legacy;
            };
            let key = UserKey::parse(&canary.key).unwrap_or(UserKey::ClientIp);
            if in_share(
                key.bucket(&route.id, headers, ip, request_id),
                canary.percent,
            ) {
                Side::Extracted
            } else {
                Side::Legacy
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(host: &str) -> http::request::Parts {
        Request::builder()
            .uri("/")
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn host_without_port() {
        assert_eq!(
            request_host(&parts("Shop.Example:8080")).as_deref(),
            Some("shop.example")
        );
        assert_eq!(
            request_host(&parts("shop.example")).as_deref(),
            Some("shop.example")
        );
        assert_eq!(request_host(&parts("[::1]:8080")).as_deref(), Some("[::1]"));
    }
}
