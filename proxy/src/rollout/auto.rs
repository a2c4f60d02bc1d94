//! The automatic rollout: once a second, every route with a `promote` table is judged by its
//! gate; with `auto = true` a held gate advances it one stage and a breach sends it back to
//! shadow — by writing through the same checked flip a person would use ([`super::write`]:
//! routes.toml, or the fleet's bucket with compare-and-set in cluster mode), so every
//! decision is in the audit journal and on the bus.
//!
//! In cluster mode every instance still tracks its own evidence, but the gates judge the sum
//! over the fleet ([`crate::cluster`]: each instance publishes its counters), and only the
//! fleet's leader acts, with the revision it judged on, so a decision is taken once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::edit::{Flip, Target};
use super::evidence::{Evidence, Figures};
use super::gate::{Decision, decide};
use super::lifecycle::Stage;
use crate::config::{PromoteConfig, RollbackConfig};
use crate::events::{Event, types};
use crate::proxy::Shared;
use crate::reload::{Reloader, Trigger};
use crate::routing::Route;

/// How often routes are judged.
const TICK: Duration = Duration::from_secs(1);

/// Gate state of every route with a `promote` table, for the admin API and the CLI.
#[derive(Debug, Default)]
pub struct Gates {
    evidence: Arc<Evidence>,
    judged: Mutex<HashMap<String, GateView>>,
}

/// One route's gate as shown to people.
#[derive(Debug, Clone, Serialize)]
pub struct GateView {
    /// The route's stage, e.g. `canary 5%`.
    pub stage: String,
    /// Whether the rollout acts by itself.
    pub auto: bool,
    /// The figures over the window.
    pub figures: Figures,
    /// The latest decision, with what is missing for the next step.
    pub decision: Decision,
    /// Cluster mode: the instances whose evidence the figures add up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pooled_from: Vec<String>,
}

impl Gates {
    /// The evidence recorder the data path and shadow feed.
    pub fn evidence(&self) -> &Arc<Evidence> {
        &self.evidence
    }

    /// The gate of `route`, if it has one.
    pub fn view(&self, route: &str) -> Option<GateView> {
        self.judged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
            .cloned()
    }
}

/// Judges routes until `shutdown`.
pub async fn run(shared: Arc<Shared>, reloader: Arc<Reloader>, shutdown: CancellationToken) {
    let mut seen: HashMap<Arc<str>, Stage> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let snapshot = shared.snapshot();
        let gates = shared.gates();
        let routes: Vec<&Route> = snapshot
            .table
            .routes()
            .iter()
            .filter(|r| r.promote.is_some())
            .collect();
        gates
            .evidence
            .retain(|id| routes.iter().any(|r| &*r.id == id));
        seen.retain(|id, _| routes.iter().any(|r| r.id == *id));
        let fleet = reloader.fleet();
        if let Some(fleet) = fleet {
            fleet.retain_evidence(|id| routes.iter().any(|r| &*r.id == id));
        }
        for route in routes {
            let stage = Stage {
                mode: route.mode,
                percent: route.canary.as_ref().map(|c| c.percent),
            };
            // A new stage (whoever made it) starts a fresh window of evidence.
            if seen.get(&route.id) != Some(&stage) || !gates.evidence.tracks(&route.id) {
                gates.evidence.track(&route.id);
                seen.insert(route.id.clone(), stage);
            }
            let promote = route.promote.clone().unwrap_or_default();
            let rollback = route.rollback.clone().unwrap_or_default();
            let local = gates
                .evidence
                .counts(&route.id, promote.window)
                .unwrap_or_default();
            // Cluster mode: the fleet's sum on the revision being served, and only the
            // leader acts, and only once the table serves what the bucket says.
            let (counts, pooled_from, acts, revision) = match fleet {
                Some(fleet) => {
                    let applied = fleet.applied_to(&route.id);
                    let revision = applied.map_or(0, |a| a.revision);
                    let (counts, from) = fleet.pooled(&route.id, revision, local);
                    let current = applied.is_none_or(|a| a.serves(stage));
                    let acts = fleet.is_leader() && current;
                    (counts, from, acts, Some(revision).filter(|r| *r > 0))
                }
                None => (local, Vec::new(), true, None),
            };
            let figures = counts.figures();
            let decision = decide(stage, &figures, &promote, &rollback);
            let view = GateView {
                stage: stage.to_string(),
                auto: promote.auto,
                figures,
                decision: decision.clone(),
                pooled_from,
            };
            gates
                .judged
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(route.id.to_string(), view);
            if promote.auto && acts {
                let judged = Judged {
                    stage,
                    revision,
                    figures: &figures,
                    promote: &promote,
                    rollback: &rollback,
                };
                act(&shared, &reloader, route, decision, judged).await;
            }
        }
    }
}

/// What a decision was judged on.
struct Judged<'a> {
    stage: Stage,
    /// Cluster mode: the route's revision in the bucket.
    revision: Option<u64>,
    figures: &'a Figures,
    promote: &'a PromoteConfig,
    rollback: &'a RollbackConfig,
}

async fn act(
    shared: &Shared,
    reloader: &Reloader,
    route: &Route,
    decision: Decision,
    judged: Judged<'_>,
) {
    let Judged {
        stage,
        revision,
        figures,
        promote,
        rollback,
    } = judged;
    let (to, because, kind) = match decision {
        Decision::Hold { .. } => return,
        Decision::Promote { to, because } => (to, because, types::ROLLOUT_PROMOTED),
        Decision::RollBack { to, because } => (to, because, types::ROLLOUT_ROLLED_BACK),
    };
    // One correlation id ties the decision's event to the route-changed event of its reload.
    let correlation = uuid::Uuid::now_v7().to_string();
    let flip = Flip {
        target: Target::Route(route.id.to_string()),
        to,
        force: false,
        by: "rollout".into(),
        reason: Some(because.clone()),
        correlation: Some(correlation.clone()),
        // Cluster mode: the decision carries the revision it was judged on, so a decision
        // made on a stage someone else has moved since is refused, not applied twice.
        revision,
    };
    match super::write(reloader, flip).await {
        Ok(_) => {
            tracing::info!(route = %route.id, from = %stage, to = %to, reason = %because, "rollout moved the route");
            let data = json!({
                "route": &*route.id,
                "from": stage.to_string(),
                "to": to.to_string(),
                "reason": because,
                "figures": figures,
                "gate": { "promote": promote, "rollback": rollback },
            });
            shared
                .events()
                .publish(Event::new(kind, Some(&route.id), &correlation, data));
            reloader.reload(Trigger::Admin).await;
        }
        Err(e) => {
            tracing::error!(route = %route.id, error = %e, "rollout could not write its decision")
        }
    }
}
