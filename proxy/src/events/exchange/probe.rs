//! Following one exchange: what its events need is noted as the request goes by, and the
//! events are built when the response body has gone to the client (or the client left).
//!
//! Bodies are counted as they stream; they are copied only when the route's events carry
//! them or an emit rule that can fire reads them, and only up to a cap.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http::header::CONTENT_ENCODING;
use http::{HeaderMap, HeaderName, Method, Response, StatusCode, request};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::body::{Copying, Counted, Watched};
use super::plan::RoutePlan;
use super::{BodyCopy, ExchangeSeen, Latency, REDACTED, Sizes, ms};
use crate::events::emit::{self, BodySeen, Extractor, SENSITIVE, Seen};
use crate::events::{Event, Publisher, types};
use crate::forward::{Prepared, ProxyBody};

/// One exchange being followed.
#[derive(Debug)]
pub struct Probe {
    plan: Arc<RoutePlan>,
    /// Whether an `exchange.seen` event is published.
    exchanges: bool,
    correlation: String,
    method: Method,
    path: String,
    query: Option<String>,
    /// Path parameters, percent-decoded.
    params: Vec<(String, String)>,
    /// The request headers the events name, as the client sent them.
    request_headers: HeaderMap,
    started: Instant,
    upstream: Option<Arc<str>>,
    extracted: bool,
    request: RequestSide,
    /// Most request body bytes copied; 0 copies none.
    request_cap: usize,
}

/// The request body as far as the probe knows it.
#[derive(Debug)]
enum RequestSide {
    /// Not read (the request was refused first).
    Unread,
    /// Read whole before forwarding.
    Known(RequestSeen),
    /// Streaming upstream; filled in when it ends.
    Streaming(Arc<OnceLock<RequestSeen>>),
}

#[derive(Debug, Clone, Default)]
pub(super) struct RequestSeen {
    pub(super) bytes: u64,
    pub(super) copy: Option<Bytes>,
    /// More bytes came than were copied.
    pub(super) truncated: bool,
    /// The body reached its end.
    pub(super) complete: bool,
}

/// The exchange once its response head is known.
#[derive(Debug)]
pub(super) struct Answered {
    probe: Probe,
    status: StatusCode,
    /// The response headers the events name (and `content-encoding`, to decode a copy).
    headers: HeaderMap,
    ttfb: Duration,
    /// Whether some emit rule fires on this method and status.
    rules_fire: bool,
}

/// A finished exchange: everything its events say, captured on the connection task when the
/// response body ends; the events themselves are built later, by the publisher's pump.
#[derive(Debug)]
pub(crate) struct Finished {
    answered: Box<Answered>,
    response: ResponseSeen,
    /// From the request's arrival to the end of the response body.
    total: Duration,
    /// When the exchange ended (the events' `time`).
    at: SystemTime,
}

/// What the response body turned out to be.
#[derive(Debug, Default)]
pub(super) struct ResponseSeen {
    pub(super) bytes: u64,
    pub(super) copy: Option<Bytes>,
    pub(super) truncated: bool,
    pub(super) complete: bool,
}

impl Probe {
    /// Starts following a request taken by `plan`'s route; `parts` are the client's, before
    /// any header is added or removed for the upstream.
    /// `exchanges` is the running publisher's `[bus] exchanges`.
    pub fn start<'p>(
        plan: &Arc<RoutePlan>,
        exchanges: bool,
        correlation: &str,
        parts: &request::Parts,
        params: impl Iterator<Item = (&'p str, &'p str)>,
        started: Instant,
    ) -> Self {
        let method = parts.method.clone();
        let exchanges = exchanges && plan.exchanges;
        let request_headers = copy_headers(&parts.headers, |name| {
            (exchanges && plan.headers.contains(name)) || plan.rule_request_headers.contains(name)
        });
        let mut request_cap = if exchanges {
            plan.bodies.unwrap_or(0)
        } else {
            0
        };
        if plan.rules_read_body(&method, true) {
            request_cap = request_cap.max(emit::BODY_LIMIT);
        }
        Self {
            plan: plan.clone(),
            exchanges,
            correlation: correlation.to_owned(),
            method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            params: params
                .map(|(n, v)| (n.to_owned(), percent_decode(v)))
                .collect(),
            request_headers,
            started,
            upstream: None,
            extracted: false,
            request: RequestSide::Unread,
            request_cap,
        }
    }

    /// Notes which upstream answers, and whether it is the extracted side.
    pub fn answered_by(&mut self, upstream: &Arc<str>, extracted: bool) {
        self.upstream = Some(upstream.clone());
        self.extracted = extracted;
    }

    /// Counts (and, if needed, copies) the request body on its way upstream.
    pub fn request_body(&mut self, body: Prepared) -> Prepared {
        match body {
            Prepared::Whole(buffered) => {
                let data = buffered.data();
                let cap = self.request_cap;
                self.request = RequestSide::Known(RequestSeen {
                    bytes: data.len() as u64,
                    copy: (cap > 0).then(|| data.slice(..data.len().min(cap))),
                    truncated: data.len() > cap,
                    complete: true,
                });
                Prepared::Whole(buffered)
            }
            Prepared::Streaming(stream) => {
                let slot = Arc::new(OnceLock::new());
                self.request = RequestSide::Streaming(slot.clone());
                let counted = Counted::new(stream, Copying::new(self.request_cap), slot);
                Prepared::Streaming(ProxyBody::new(counted))
            }
        }
    }

    /// Wraps the response to the client; the events are published when its body ends.
    pub fn watch(self, response: Response<ProxyBody>, publisher: Publisher) -> Response<ProxyBody> {
        let (answered, cap) = self.answer(&response);
        let (head, body) = response.into_parts();
        let watched = Watched::new(body, Copying::new(cap), Box::new(answered), publisher);
        Response::from_parts(head, ProxyBody::new(watched))
    }

    /// The exchange with its response head, and how much of the response body to copy.
    pub(super) fn answer<B>(self, response: &Response<B>) -> (Answered, usize) {
        let plan = &self.plan;
        let status = response.status();
        let rules_fire = plan.rules.iter().any(|r| r.fires(&self.method, status));
        let mut cap = if self.exchanges {
            plan.bodies.unwrap_or(0)
        } else {
            0
        };
        if rules_fire && plan.rules_read_body(&self.method, false) {
            cap = cap.max(emit::BODY_LIMIT);
        }
        // `content-encoding` too when a body is copied, to decode the copy.
        let headers = copy_headers(response.headers(), |name| {
            (self.exchanges && plan.headers.contains(name))
                || (rules_fire && plan.rule_response_headers.contains(name))
                || (cap > 0 && name == CONTENT_ENCODING)
        });
        let answered = Answered {
            ttfb: self.started.elapsed(),
            probe: self,
            status,
            headers,
            rules_fire,
        };
        (answered, cap)
    }
}

impl Answered {
    /// The exchange, ended now with `response`: the clock stops here, the events are built
    /// later ([`Finished::events`]).
    pub(super) fn finish(self: Box<Self>, response: ResponseSeen) -> Finished {
        Finished {
            total: self.probe.started.elapsed(),
            at: SystemTime::now(),
            answered: self,
            response,
        }
    }
}

impl Finished {
    /// How many events [`events`](Self::events) builds at most: the `exchange.seen` and one
    /// per emit rule that fires (cheap; for counting drops without building them).
    pub(crate) fn expected(&self) -> u64 {
        let Answered { probe, status, .. } = &*self.answered;
        let rules = probe
            .plan
            .rules
            .iter()
            .filter(|r| r.fires(&probe.method, *status))
            .count();
        u64::from(probe.exchanges) + rules as u64
    }

    /// The events of the finished exchange: its `exchange.seen` (if the route publishes
    /// exchanges) and one per emit rule that fired and found all its fields. Their `source`
    /// is left for the publisher to stamp.
    pub(crate) fn events(self) -> Vec<Event> {
        let Finished {
            answered,
            response,
            total,
            at,
        } = self;
        let Answered {
            probe,
            status,
            headers,
            ttfb,
            rules_fire,
        } = *answered;
        let plan = &*probe.plan;
        let request = match &probe.request {
            RequestSide::Unread => RequestSeen::default(),
            RequestSide::Known(seen) => seen.clone(),
            RequestSide::Streaming(slot) => slot.get().cloned().unwrap_or_default(),
        };
        let subject = plan.route.as_deref();
        let mut events = Vec::new();
        if probe.exchanges {
            let bodies = plan.bodies;
            let seen: ExchangeSeen<&str, Fields<'_>> = ExchangeSeen {
                route: plan.route.as_deref(),
                mode: plan.mode.map(|m| m.as_str()),
                method: probe.method.as_str(),
                path_template: plan.template.as_deref(),
                path: &probe.path,
                params: Fields::Params(&probe.params),
                query: probe.query.as_deref(),
                status: status.as_u16(),
                upstream: probe.upstream.as_deref(),
                side: if probe.extracted {
                    "extracted"
                } else {
                    "legacy"
                },
                latency: Latency {
                    ttfb_ms: ms(ttfb),
                    total_ms: ms(total),
                },
                sizes: Sizes {
                    request_bytes: request.bytes,
                    response_bytes: response.bytes,
                },
                request_headers: Fields::Headers(&probe.request_headers, &plan.headers),
                response_headers: Fields::Headers(&headers, &plan.headers),
                request_body: bodies
                    .and_then(|cap| body_copy(request.copy.as_ref(), request.truncated, None, cap)),
                response_body: bodies.and_then(|cap| {
                    let decode = (response.complete && !response.truncated).then_some(&headers);
                    body_copy(response.copy.as_ref(), response.truncated, decode, cap)
                }),
                complete: response.complete,
            };
            events.extend(super::event_at(
                types::EXCHANGE_SEEN,
                subject,
                &probe.correlation,
                &seen,
                at,
            ));
        }
        if !rules_fire {
            return events;
        }
        fn whole(copy: &Option<Bytes>, truncated: bool, complete: bool) -> BodySeen<'_> {
            match copy {
                Some(bytes) if complete && !truncated => BodySeen::Complete(bytes),
                _ => BodySeen::Unavailable,
            }
        }
        let from = Extractor::new(Seen {
            params: &probe.params,
            request_headers: &probe.request_headers,
            response_headers: &headers,
            request_body: whole(&request.copy, request.truncated, request.complete),
            response_body: whole(&response.copy, response.truncated, response.complete),
        });
        for rule in plan.rules.iter().filter(|r| r.fires(&probe.method, status)) {
            match rule.extract(&from) {
                Ok(data) => events.extend(super::event_at(
                    rule.kind(),
                    subject,
                    &probe.correlation,
                    &data,
                    at,
                )),
                Err(skip) => tracing::debug!(
                    route = subject.unwrap_or("-"),
                    event = &**rule.kind(),
                    reason = skip.as_str(),
                    correlation = %probe.correlation,
                    "emit rule skipped"
                ),
            }
        }
        events
    }
}

/// A map of an exchange event, written from where the proxy keeps it (no copy).
enum Fields<'a> {
    /// Path parameters, percent-decoded, in the template's order.
    Params(&'a [(String, String)]),
    /// The allow-listed fields of a message that are present: repeated values joined by
    /// `, `, credentials always [`REDACTED`].
    Headers(&'a HeaderMap, &'a [HeaderName]),
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Params(params) => serializer.collect_map(params.iter().map(|(k, v)| (k, v))),
            Self::Headers(headers, allowed) => {
                let mut map = serializer.serialize_map(None)?;
                // `allowed` lists each name once (the plan keeps a repeated name once).
                for name in allowed.iter() {
                    let mut values = headers.get_all(name).iter();
                    let Some(first) = values.next() else {
                        continue;
                    };
                    let text = if SENSITIVE.contains(&name.as_str()) {
                        Cow::Borrowed(REDACTED)
                    } else {
                        let mut text = String::from_utf8_lossy(first.as_bytes());
                        for value in values {
                            let joined = text.to_mut();
                            joined.push_str(", ");
                            joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
                        }
                        text
                    };
                    map.serialize_entry(name.as_str(), &text)?;
                }
                map.end()
            }
        }
    }
}

/// A body copy for an exchange event: decoded when `decode_by` says how, cut at `cap`.
fn body_copy(
    copy: Option<&Bytes>,
    truncated: bool,
    decode_by: Option<&HeaderMap>,
    cap: usize,
) -> Option<BodyCopy> {
    let raw = copy?;
    let decoded = decode_by
        .filter(|h| h.contains_key(CONTENT_ENCODING))
        .and_then(|h| emit::decode_body(h, raw));
    let (bytes, truncated) = match &decoded {
        Some(d) => (&d[..], d.len() > cap),
        None => (&raw[..], truncated || raw.len() > cap),
    };
    let bytes = &bytes[..bytes.len().min(cap)];
    let (encoding, data) = match std::str::from_utf8(bytes) {
        Ok(text) => ("utf8", text.to_owned()),
        // Cut inside a character: keep the whole ones.
        Err(e) if e.error_len().is_none() && truncated => (
            "utf8",
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
        ),
        Err(_) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ),
    };
    Some(BodyCopy {
        encoding: encoding.to_owned(),
        data,
        truncated,
    })
}

/// The fields of `from` that `wanted` names, every value in order. One pass over the
/// message's fields with cheap name comparisons, instead of a hash lookup per listed name.
fn copy_headers(from: &HeaderMap, wanted: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let mut to = HeaderMap::new();
    for (name, value) in from {
        if wanted(name) {
            to.append(name.clone(), value.clone());
        }
    }
    to
}

/// `%XX` sequences decoded; invalid UTF-8 replaced.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
