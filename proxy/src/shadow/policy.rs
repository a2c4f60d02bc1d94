//! Whether a request is mirrored, and if not, why: every reason is named and counted.

use http::{HeaderMap, Method};

use crate::config::{ShadowConfig, WritePolicy};
use crate::proxy::BUCKETS;

/// Why a request was not mirrored (or its comparison could not finish).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The user is outside `shadow.sample`.
    SampledOut,
    /// The write policy keeps this method from the candidate.
    MethodNotAllowed,
    /// The request body is larger than `shadow.max_body`.
    BodyTooLarge,
    /// The route's queue of waiting copies is full.
    QueueFull,
    /// No candidate slot freed up within the candidate timeout.
    ConcurrencyLimit,
    /// The candidate did not answer within the timeout.
    CandidateTimeout,
    /// The candidate could not be reached or broke the connection.
    CandidateError,
    /// The client's request body ended early or was malformed.
    RequestIncomplete,
    /// The client went away before the legacy answer was complete.
    PrimaryIncomplete,
    /// A response was too large to compare.
    ResponseTooLarge,
    /// The route has no candidate upstream in the running configuration.
    NoCandidate,
}

impl SkipReason {
    /// Every reason, for metrics and summaries.
    pub const ALL: [SkipReason; 11] = [
        Self::SampledOut,
        Self::MethodNotAllowed,
        Self::BodyTooLarge,
        Self::QueueFull,
        Self::ConcurrencyLimit,
        Self::CandidateTimeout,
        Self::CandidateError,
        Self::RequestIncomplete,
        Self::PrimaryIncomplete,
        Self::ResponseTooLarge,
        Self::NoCandidate,
    ];

    /// The snake_case name used in records, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SampledOut => "sampled_out",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTooLarge => "body_too_large",
            Self::QueueFull => "queue_full",
            Self::ConcurrencyLimit => "concurrency_limit",
            Self::CandidateTimeout => "candidate_timeout",
            Self::CandidateError => "candidate_error",
            Self::RequestIncomplete => "request_incomplete",
            Self::PrimaryIncomplete => "primary_incomplete",
            Self::ResponseTooLarge => "response_too_large",
            Self::NoCandidate => "no_candidate",
        }
    }
}

/// True when the method may be mirrored under `writes`.
pub fn method_allowed(method: &Method, writes: WritePolicy) -> bool {
    writes == WritePolicy::Mirror || is_safe(method)
}

/// GET, HEAD and OPTIONS: mirrored by default, and the only methods used to learn noise.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// True when the user in `bucket` is inside `sample`. Sampling counts buckets from the top
/// while the canary share counts from the bottom, so a route whose canary and sample add up
/// to at most 100 % never puts one user in both (and canary users are never mirrored anyway).
pub fn sampled(bucket: u32, sample: f64) -> bool {
    f64::from(BUCKETS - bucket) <= sample * f64::from(BUCKETS)
}

/// The first reason not to mirror, judged before any body byte is read.
pub fn precheck(
    settings: &ShadowConfig,
    method: &Method,
    headers: &HeaderMap,
    bucket: u32,
) -> Result<(), SkipReason> {
    if !sampled(bucket, settings.sample) {
        return Err(SkipReason::SampledOut);
    }
    if !method_allowed(method, settings.writes) {
        return Err(SkipReason::MethodNotAllowed);
    }
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > settings.max_body_bytes()) {
        return Err(SkipReason::BodyTooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::in_share;

    #[test]
    fn sample_edges() {
        assert!(sampled(0, 1.0));
        assert!(sampled(BUCKETS - 1, 1.0));
        assert!(!sampled(0, 0.0));
        assert!(!sampled(BUCKETS - 1, 0.0));
        let share = (0..BUCKETS).filter(|b| sampled(*b, 0.25)).count();
        assert_eq!(share, 2500);
    }

    #[test]
    fn canary_and_sample_are_disjoint_when_they_fit() {
        for b in 0..BUCKETS {
            assert!(!(in_share(b, 30.0) && sampled(b, 0.7)), "bucket {b}");
        }
    }

    #[test]
    fn writes_need_the_mirror_policy() {
        let mut s = ShadowConfig::default();
        let h = HeaderMap::new();
        assert_eq!(
            precheck(&s, &Method::POST, &h, 0),
            Err(SkipReason::MethodNotAllowed)
        );
        assert_eq!(precheck(&s, &Method::GET, &h, 0), Ok(()));
        s.writes = WritePolicy::Mirror;
        assert_eq!(precheck(&s, &Method::POST, &h, 0), Ok(()));
    }

    #[test]
    fn declared_large_body_is_skipped_up_front() {
        let s = ShadowConfig::default();
        let mut h = HeaderMap::new();
        h.insert("content-length", "5000000".parse().unwrap());
        assert_eq!(
            precheck(&s, &Method::GET, &h, 0),
            Err(SkipReason::BodyTooLarge)
        );
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SkipReason::ALL.len());
    }
}
