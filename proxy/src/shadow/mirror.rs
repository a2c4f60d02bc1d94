//! One mirrored exchange: the copy's request, the wait for both answers, the comparison.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, request};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;

use super::corpus::{Corpus, Exchange, Mismatch};
use super::policy::{SkipReason, is_safe};
use super::summary::{Entry, Latency, Record, ms, now_rfc3339};
use super::tee::{Capture, Captured, Tee};
use super::{RouteShadow, Shadows, lock};
use crate::diff::{self, Observed, Verdict};
use crate::forward::{Buffered, Prepared, ProxyBody, Upstream};

/// Marks every copy, so a candidate can tell a mirrored request (and run writes dry).
static SHADOW_MARK: HeaderName = HeaderName::from_static("x-strangler-shadow");

/// The request body of a copy: known already, or still streaming to the primary.
enum CopyBody {
    Ready(Bytes),
    Pending(Captured),
}

/// The mirror of one request, holding its place in the route's queue.
pub struct Mirror {
    route: Arc<RouteShadow>,
    candidate: Arc<Upstream>,
    parts: request::Parts,
    /// A second legacy request (safe methods, sampled by `shadow.baseline`) to learn noise.
    relearn: Option<(Arc<Upstream>, request::Parts)>,
    body: CopyBody,
    correlation: String,
    /// The client's path and query (the copy's may carry the candidate's prefix), for the corpus.
    client_path: PathAndQuery,
    _queued: OwnedSemaphorePermit,
}

/// The primary (legacy) answer as it reaches the client.
pub struct Primary {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Time from the request's arrival to the response head.
    pub ttfb: Duration,
    /// The teed body.
    pub body: Captured,
}

impl Mirror {
    /// Prepares the copy of a request whose headers are final (forwarded headers added) but
    /// not yet targeted at an upstream. Fails with `QueueFull` when the route's budget is spent.
    pub fn prepare(
        route: Arc<RouteShadow>,
        parts: &request::Parts,
        candidate: Arc<Upstream>,
        legacy: Option<Arc<Upstream>>,
        correlation: &str,
        relearn_roll: f64,
    ) -> Result<Self, SkipReason> {
        let queued = route
            .queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| SkipReason::QueueFull)?;
        let settings = &route.settings;
        let mut copy = clone_parts(parts);
        for name in &settings.remove_headers {
            copy.headers.remove(name.as_str());
        }
        for (name, value) in &settings.set_headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                copy.headers.insert(name, value);
            }
        }
        copy.headers
            .insert(SHADOW_MARK.clone(), HeaderValue::from_static("1"));
        candidate
            .target(&mut copy)
            .map_err(|_| SkipReason::CandidateError)?;
        let relearn = match legacy {
            Some(legacy) if is_safe(&parts.method) && relearn_roll < settings.baseline => {
                let mut again = clone_parts(parts);
                legacy.target(&mut again).ok().map(|()| (legacy, again))
            }
            _ => None,
        };
        Ok(Self {
            route,
            candidate,
            parts: copy,
            relearn,
            body: CopyBody::Ready(Bytes::new()),
            correlation: correlation.to_owned(),
            client_path: parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
            _queued: queued,
        })
    }

    /// Takes the request body on its way to the primary: a whole body is shared, a
    /// streaming one is teed up to `shadow.max_body`.
    pub fn attach_body(&mut self, body: Prepared) -> Prepared {
        match body {
            Prepared::Whole(buffered) => {
                self.body = CopyBody::Ready(buffered.data().clone());
                Prepared::Whole(buffered)
            }
            Prepared::Streaming(stream) => {
                let cap =
                    usize::try_from(self.route.settings.max_body_bytes()).unwrap_or(usize::MAX);
                let (tee, captured) = Tee::new(stream, cap);
                self.body = CopyBody::Pending(captured);
                Prepared::Streaming(ProxyBody::new(tee))
            }
        }
    }

    /// The route this copy belongs to.
    pub fn route(&self) -> &Arc<RouteShadow> {
        &self.route
    }

    /// Records that the primary failed, so there is nothing to compare.
    pub fn primary_failed(self) {
        let record = skipped_record(
            &self.route.id,
            SkipReason::PrimaryIncomplete,
            &self.parts.method,
            path_of(&self.parts),
            &self.correlation,
        );
        self.route
            .finish(record, Some(SkipReason::PrimaryIncomplete));
    }

    /// Sends the copy and compares the answers in a task of its own.
    pub fn spawn(self, shadows: &Shadows, primary: Primary) {
        let corpus = shadows.corpus.load_full();
        shadows.tasks.spawn(self.run(primary, corpus));
    }

    async fn run(self, primary: Primary, corpus: Option<Arc<Corpus>>) {
        let Mirror {
            route,
            candidate,
            parts,
            relearn,
            body,
            correlation,
            client_path,
            _queued,
        } = self;
        // Kept for the corpus only: the copy's head goes to the candidate.
        let copy_headers = corpus.as_ref().map(|_| parts.headers.clone());
        let method = parts.method.clone();
        let path = path_of(&parts).to_owned();
        let skip = |reason: SkipReason| {
            let record = skipped_record(&route.id, reason, &method, &path, &correlation);
            route.finish(record, Some(reason));
        };
        let body = match body {
            CopyBody::Ready(b) => b,
            CopyBody::Pending(captured) => match captured.await {
                Ok(Capture::Complete { body, .. }) => body,
                Ok(Capture::TooLarge) => return skip(SkipReason::BodyTooLarge),
                _ => return skip(SkipReason::RequestIncomplete),
            },
        };
        let timeout = route.settings.timeout;
        let max = super::CAPTURE_LIMIT;
        // A free slot is taken without arming a timer.
        let slot = match route.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let waited = tokio::time::timeout(timeout, route.slots.clone().acquire_owned());
                let Ok(Ok(slot)) = waited.await else {
                    return skip(SkipReason::ConcurrencyLimit);
                };
                slot
            }
        };
        let candidate_answer =
            tokio::time::timeout(timeout, fetch(&candidate, parts, body.clone(), max));
        // The second legacy call is rare (sampled by `shadow.baseline`): boxed only when made,
        // so every mirror's task is not sized for two requests in flight.
        let (candidate_answer, second) = match relearn {
            None => (candidate_answer.await, None),
            Some((legacy, again)) => {
                let relearn = Box::pin(async {
                    tokio::time::timeout(timeout, fetch(&legacy, again, body.clone(), max))
                        .await
                        .ok()?
                        .ok()
                });
                tokio::join!(candidate_answer, relearn)
            }
        };
        drop(slot);
        let candidate_answer = match candidate_answer {
            Err(_) => return skip(SkipReason::CandidateTimeout),
            Ok(Err(reason)) => return skip(reason),
            Ok(Ok(answer)) => answer,
        };
        let (legacy_body, legacy_total) = match primary.body.await {
            Ok(Capture::Complete { body, elapsed }) => (body, primary.ttfb + elapsed),
            Ok(Capture::TooLarge) => return skip(SkipReason::ResponseTooLarge),
            _ => return skip(SkipReason::PrimaryIncomplete),
        };
        let legacy = Observed {
            status: primary.status.as_u16(),
            headers: primary.headers,
            body: legacy_body,
        };
        if let Some(again) = second {
            lock(&route.baseline).learn(&legacy, &again.observed, &route.rules);
        }
        let comparison = diff::compare(&legacy, &candidate_answer.observed, &route.rules);
        let baseline = lock(&route.baseline);
        let judged = diff::classify(&comparison, &baseline);
        drop(baseline);
        let differences = comparison
            .differences
            .iter()
            .map(|d| Entry {
                pointer: d.pointer.clone(),
                legacy: d.legacy.clone(),
                candidate: d.candidate.clone(),
                noise: judged.noise.iter().any(|n| n.pointer == d.pointer),
            })
            .collect::<Vec<Entry>>();
        let at = now_rfc3339();
        if let (Some(corpus), Some(headers), Verdict::Regression) =
            (&corpus, &copy_headers, judged.verdict)
        {
            let secret: Vec<String> = route.settings.set_headers.keys().cloned().collect();
            corpus.offer(&Mismatch::new(&Exchange {
                route: &route.id,
                correlation: &correlation,
                at: &at,
                method: &method,
                path: client_path.as_str(),
                headers,
                body: &body,
                legacy: &legacy,
                candidate: &candidate_answer.observed,
                differences: &differences,
                total_differences: comparison.total,
                secret_headers: &secret,
            }));
        }
        let record = Record {
            route: route.id.to_string(),
            correlation,
            method: method.to_string(),
            path,
            at,
            verdict: judged.verdict.as_str(),
            reason: None,
            differences,
            total_differences: comparison.total,
            latency: Latency {
                legacy_ttfb_ms: ms(primary.ttfb),
                legacy_total_ms: ms(legacy_total),
                candidate_ttfb_ms: ms(candidate_answer.ttfb),
                candidate_total_ms: ms(candidate_answer.total),
            },
            candidate_status: Some(candidate_answer.observed.status),
            baseline_samples: judged.samples,
        };
        route.finish(record, None);
    }
}

/// An answer read whole, with its timings.
struct Answer {
    observed: Observed,
    ttfb: Duration,
    total: Duration,
}

/// Sends a request and reads its whole answer, up to `max` body bytes.
async fn fetch(
    upstream: &Upstream,
    parts: request::Parts,
    body: Bytes,
    max: usize,
) -> Result<Answer, SkipReason> {
    let started = Instant::now();
    let response = upstream
        .send(parts, Prepared::Whole(Buffered::from_bytes(body)))
        .await
        .map_err(|e| match e {
            crate::forward::ForwardError::Timeout { .. } => SkipReason::CandidateTimeout,
            _ => SkipReason::CandidateError,
        })?;
    let ttfb = started.elapsed();
    let (head, mut stream) = response.into_parts();
    // A body in one frame (the usual small answer) is kept as it came, without a copy.
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = stream.frame().await {
        let frame = frame.map_err(|_| SkipReason::CandidateError)?;
        if let Ok(data) = frame.into_data() {
            let held = joined.as_ref().map_or(first.len(), BytesMut::len);
            if held + data.len() > max {
                return Err(SkipReason::ResponseTooLarge);
            }
            match joined.as_mut() {
                Some(joined) => joined.extend_from_slice(&data),
                None if first.is_empty() => first = data,
                None => {
                    let mut both = BytesMut::with_capacity(first.len() + data.len());
                    both.extend_from_slice(&first);
                    both.extend_from_slice(&data);
                    joined = Some(both);
                }
            }
        }
    }
    Ok(Answer {
        observed: Observed {
            status: head.status.as_u16(),
            headers: head.headers,
            body: joined.map_or(first, BytesMut::freeze),
        },
        ttfb,
        total: started.elapsed(),
    })
}

/// A record for an exchange that was not compared.
pub(super) fn skipped_record(
    route: &str,
    reason: SkipReason,
    method: &Method,
    path: &str,
    correlation: &str,
) -> Record {
    Record {
        route: route.to_owned(),
        correlation: correlation.to_owned(),
        method: method.to_string(),
        path: path.to_owned(),
        at: now_rfc3339(),
        verdict: "skipped",
        reason: Some(reason.as_str()),
        differences: Vec::new(),
        total_differences: 0,
        latency: Latency::default(),
        candidate_status: None,
        baseline_samples: 0,
    }
}

fn path_of(parts: &request::Parts) -> &str {
    parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
}

fn clone_parts(parts: &request::Parts) -> request::Parts {
    let mut request = http::Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.into_parts().0
}
