//! Mirroring: a copy of a request goes to the candidate (the extracted service) while the
//! client gets the legacy answer; the two answers are then compared by `diff`.
//!
//! The rule this module must never break: **the copy never slows or fails the client**.
//! Everything about the copy happens in a task of its own after the client's request has
//! been sent on; the client's bodies are only *teed* (copied as they stream, up to a cap).
//! Per route, an isolation budget bounds the work: a queue of waiting copies
//! (`shadow.queue`), candidate calls in flight (`shadow.concurrency`) and a candidate timeout;
//! excess is skipped and counted with its reason, never queued without bound. Candidate
//! connections come from the candidate upstream's pool.
//!
//! A small share of safe requests (`shadow.baseline`) is also sent a second time to legacy:
//! where legacy disagrees with itself (timestamps, request ids) the route learns noise, so a
//! mismatch there is `noise`, not `regression`.
//!
//! Every finished record is published (`shadow.compared`, or `shadow.skipped` with its reason)
//! under the exchange's correlation id; requests merely sampled out are only counted.

pub mod corpus;
mod mirror;
pub mod policy;
pub mod summary;
pub mod tee;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::admin::metrics::Histogram;
use crate::config::{DiffConfig, ShadowConfig};
use crate::diff::{DiffRules, NoiseBaseline};
use crate::events::Publisher;
use crate::events::exchange::shadow_event;
use crate::rollout::Evidence;

pub use corpus::{Corpus, CorpusCounts, CorpusSettings};
pub use mirror::{Mirror, Primary};
pub use policy::SkipReason;
pub use summary::{Record, SummaryView};

/// Most bytes of an answer kept for comparison; a larger one is reported, not compared.
pub const CAPTURE_LIMIT: usize = 8 * 1024 * 1024;

/// Shadow state of every route, kept across reloads (baselines and tallies survive a reload;
/// budgets follow the new settings).
#[derive(Debug, Default)]
pub struct Shadows {
    routes: Mutex<HashMap<Arc<str>, Arc<RouteShadow>>>,
    tasks: TaskTracker,
    /// Where regressions are captured, once started (see [`Shadows::start_corpus`]).
    corpus: ArcSwapOption<Corpus>,
    /// The corpus writer: it ends after the copies, so it outlives `tasks`.
    writers: TaskTracker,
    /// Where finished records are published (`shadow.compared` / `shadow.skipped`).
    events: OnceLock<Publisher>,
    /// Where comparisons count as promotion-gate evidence (set once, at start).
    evidence: OnceLock<Arc<Evidence>>,
}

/// One route's budget, baseline and findings.
#[derive(Debug)]
pub struct RouteShadow {
    id: Arc<str>,
    settings: ShadowConfig,
    /// The diff table the rules were compiled from (to notice a change on reload).
    diff: Option<DiffConfig>,
    rules: DiffRules,
    /// Copies waiting or running; a permit per copy, `queue + concurrency` in all.
    queue: Arc<Semaphore>,
    /// Candidate calls in flight.
    slots: Arc<Semaphore>,
    /// Learned noise; shared by every budget generation of the route.
    baseline: Arc<Mutex<NoiseBaseline>>,
    /// Tallies and recent records; shared by every budget generation of the route.
    summary: Arc<Mutex<summary::Summary>>,
    /// The candidate's time to response head in compared exchanges (for `/metrics`); shared
    /// by every budget generation of the route.
    candidate_latency: Arc<Histogram>,
    /// Publishes finished records, when a bus is configured.
    events: Option<Publisher>,
    /// Promotion-gate evidence (counts only for routes the gates track).
    evidence: Option<Arc<Evidence>>,
}

impl Shadows {
    /// The state of route `id`, created (or re-budgeted after a settings change) as needed.
    pub fn route(
        &self,
        id: &Arc<str>,
        settings: &ShadowConfig,
        diff: Option<&DiffConfig>,
    ) -> Arc<RouteShadow> {
        let mut routes = lock(&self.routes);
        if let Some(existing) = routes.get(id) {
            if existing.settings == *settings && existing.diff.as_ref() == diff {
                return existing.clone();
            }
        }
        // Validation compiled these rules already; a table that fails here gets the defaults.
        let rules = diff
            .map_or_else(|| Ok(DiffRules::default()), DiffRules::new)
            .unwrap_or_default();
        let previous = routes.get(id).cloned();
        let fresh = Arc::new(RouteShadow {
            id: id.clone(),
            settings: settings.clone(),
            diff: diff.cloned(),
            rules,
            queue: Arc::new(Semaphore::new(settings.queue + settings.concurrency)),
            slots: Arc::new(Semaphore::new(settings.concurrency)),
            // Shared with the previous state, so copies still in flight on it count here too.
            baseline: previous
                .as_ref()
                .map(|p| p.baseline.clone())
                .unwrap_or_default(),
            summary: previous
                .as_ref()
                .map(|p| p.summary.clone())
                .unwrap_or_default(),
            candidate_latency: previous
                .as_ref()
                .map(|p| p.candidate_latency.clone())
                .unwrap_or_default(),
            events: self.events.get().filter(|p| p.is_enabled()).cloned(),
            evidence: self.evidence.get().cloned(),
        });
        routes.insert(id.clone(), fresh.clone());
        fresh
    }

    /// Publishes finished records through `events` from now on (set once, at start).
    pub fn publish_to(&self, events: Publisher) {
        let _ = self.events.set(events);
    }

    /// Counts finished comparisons as promotion-gate evidence from now on (set once).
    pub fn feed(&self, evidence: Arc<Evidence>) {
        let _ = self.evidence.set(evidence);
    }

    /// Summaries of every route that has shadow state.
    pub fn summaries(&self) -> Vec<SummaryView> {
        let routes: Vec<Arc<RouteShadow>> = lock(&self.routes).values().cloned().collect();
        let corpus = self.corpus.load();
        let mut views: Vec<SummaryView> = routes
            .iter()
            .map(|r| {
                let mut view = r.view();
                view.corpus = corpus.as_ref().map(|c| c.counts(&r.id));
                view
            })
            .collect();
        views.sort_by(|a, b| a.route.cmp(&b.route));
        views
    }

    /// Per route (sorted by id), the candidate's time to response head in the exchanges
    /// compared so far: one observation per comparison.
    pub fn candidate_latency(&self) -> Vec<(Arc<str>, Arc<Histogram>)> {
        let mut rows: Vec<(Arc<str>, Arc<Histogram>)> = lock(&self.routes)
            .values()
            .map(|r| (r.id.clone(), r.candidate_latency.clone()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    /// Recent records of `route` (or of all routes), newest first.
    pub fn recent(&self, route: Option<&str>, limit: usize, verdict: Option<&str>) -> Vec<Record> {
        let routes: Vec<Arc<RouteShadow>> = lock(&self.routes)
            .values()
            .filter(|r| route.is_none_or(|id| &*r.id == id))
            .cloned()
            .collect();
        let mut records: Vec<Record> = routes
            .iter()
            .flat_map(|r| lock(&r.summary).recent(limit, verdict))
            .collect();
        records.sort_by(|a, b| b.at.cmp(&a.at));
        records.truncate(limit);
        records
    }

    /// The tasks running copies (for shutdown).
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Starts capturing regressions into the corpus (once, when the proxy starts).
    pub fn start_corpus(&self, settings: CorpusSettings) {
        tracing::info!(folder = %settings.folder.display(), max = settings.max, "capturing shadow regressions");
        let corpus = Corpus::start(settings, &self.writers);
        self.corpus.store(Some(Arc::new(corpus)));
    }

    /// Stops capturing and waits (up to `grace`) until what was captured is on disk. Call it
    /// once the copies have ended, so none of theirs is lost.
    pub async fn close_corpus(&self, grace: Duration) {
        self.corpus.store(None);
        self.writers.close();
        if tokio::time::timeout(grace, self.writers.wait())
            .await
            .is_err()
        {
            tracing::warn!("abandoning shadow corpus captures not yet written");
        }
    }
}

impl RouteShadow {
    /// The route's settings.
    pub fn settings(&self) -> &ShadowConfig {
        &self.settings
    }

    /// Most bytes of an answer kept for comparison.
    pub fn compare_limit(&self) -> usize {
        CAPTURE_LIMIT
    }

    /// Counts a request that was not mirrored, keeping a record unless it was merely
    /// sampled out (those are only counted).
    pub fn skip(&self, reason: SkipReason, method: &http::Method, path: &str, correlation: &str) {
        if reason == SkipReason::SampledOut {
            lock(&self.summary).count_skip(reason);
            return;
        }
        self.finish(
            mirror::skipped_record(&self.id, reason, method, path, correlation),
            Some(reason),
        );
    }

    fn finish(&self, record: Record, reason: Option<SkipReason>) {
        if record.verdict == "regression" {
            tracing::debug!(route = %self.id, correlation = %record.correlation, differences = record.total_differences, "shadow regression");
        }
        let candidate_ttfb = Duration::try_from_secs_f64(record.latency.candidate_ttfb_ms / 1000.0)
            .unwrap_or_default();
        if reason.is_none() && record.candidate_status.is_some() {
            self.candidate_latency.observe(candidate_ttfb);
        }
        if let Some(evidence) = &self.evidence {
            let regression = record.verdict == "regression";
            match (reason, record.candidate_status) {
                (None, Some(status)) => {
                    evidence.comparison(&self.id, regression, Some((status, candidate_ttfb)));
                }
                (Some(SkipReason::CandidateTimeout | SkipReason::CandidateError), _) => {
                    evidence.comparison(&self.id, false, None);
                }
                _ => {}
            }
        }
        let event = self.events.as_ref().and_then(|_| shadow_event(&record));
        lock(&self.summary).add(record, reason);
        if let (Some(events), Some(event)) = (&self.events, event) {
            events.publish(event);
        }
    }

    fn view(&self) -> SummaryView {
        let samples = lock(&self.baseline).samples();
        lock(&self.summary).view(&self.id, samples)
    }
}

/// Locks a mutex, recovering the data if a holder panicked (every critical section here
/// leaves the data consistent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
