//! Joining the fleet, overlaying its modes on routes.toml, and writing flips to the bucket
//! with compare-and-set on the revision.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_nats::jetstream::kv::{Operation, UpdateErrorKind};

use super::kv::{Bucket, ModeRecord, Unreachable, bounded, route_key};
use super::offline::{self, PendingKill};
use super::{Applied, Fleet, StartedFrom, lock};
use crate::config::{ClusterConfig, Config, Diagnostics, RawConfig, RouteMode};
use crate::rollout::journal::{self, Change};
use crate::rollout::plan;
use crate::rollout::{Flip, FlipError, Stage, Target};

/// Attempts of the kill switch against a route others keep changing: it must win, so it
/// retries on a conflict with the fresh revision, a bounded number of times.
const KILL_ATTEMPTS: usize = 8;

/// The stage routes.toml gives a route.
pub(super) fn file_stage(route: &crate::config::RouteConfig) -> Stage {
    Stage {
        mode: route.mode,
        percent: route.canary.as_ref().map(|c| c.percent),
    }
}

/// Whether two stages send traffic the same way (a percent only matters in canary).
fn same(a: Stage, b: Stage) -> bool {
    a.mode == b.mode && (a.mode != RouteMode::Canary || a.percent == b.percent)
}

/// Whether `flip` is the kill switch, the one flip allowed while NATS is away.
fn is_kill_switch(flip: &Flip) -> bool {
    flip.target == Target::All && flip.to.mode == RouteMode::Legacy
}

impl Fleet {
    /// Joins the fleet of `settings` as `instance`: opens (or creates) the bucket, seeds the
    /// routes it does not know from `config`, and reads their modes. When NATS is
    /// unreachable, starts from the on-disk copy (routes.toml's modes when there is none)
    /// and says so loudly; [`Fleet::run`] joins later.
    pub async fn join(
        settings: ClusterConfig,
        instance: String,
        config: &Config,
        config_path: &Path,
    ) -> Arc<Self> {
        let copy = offline::path(config.base_dir());
        let saved = offline::load(&copy, &settings.bucket);
        let pending = saved
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .and_then(|c| c.pending_kill.as_ref())
            .map(PendingKill::flip);
        let opened = Bucket::open(&settings, &instance).await;
        let error = opened.as_ref().err().map(ToString::to_string);
        let fleet = Arc::new(Self {
            settings,
            instance,
            config_path: config_path.to_owned(),
            copy,
            online: AtomicBool::new(opened.is_ok()),
            bucket: Mutex::new(opened.ok()),
            modes: Mutex::new(BTreeMap::new()),
            started_from: Mutex::new(StartedFrom::Bucket),
            detail: Mutex::new(None),
            pending_kill: Mutex::new(pending),
            warned: Mutex::new(Default::default()),
            causes: Mutex::new(Default::default()),
            writes: tokio::sync::Mutex::new(()),
            conflicts: AtomicU64::new(0),
            received: AtomicU64::new(0),
            keeps_copy: true,
            lease: Mutex::new(Default::default()),
            local: Mutex::new(BTreeMap::new()),
            heard: Mutex::new(BTreeMap::new()),
            members: Mutex::new(BTreeMap::new()),
            applied_notice: tokio::sync::Notify::new(),
        });
        let joined = match error {
            None => fleet.catch_up(config.raw()).await,
            Some(e) => Err(e),
        };
        match joined {
            Ok(()) => {
                tracing::info!(instance = %fleet.instance, bucket = %fleet.settings.bucket, routes = lock(&fleet.modes).len(), "cluster: joined the fleet; route modes come from the bucket");
                fleet.save_copy().await;
            }
            Err(e) => fleet.start_offline(saved, e),
        }
        fleet
    }

    /// What joining (again) does: writes a kill switch that waited for NATS, seeds the
    /// routes the bucket does not know, and takes every route's mode from the bucket.
    pub(super) async fn catch_up(&self, raw: &RawConfig) -> Result<(), String> {
        let bucket = lock(&self.bucket)
            .clone()
            .ok_or_else(|| "not connected".to_owned())?;
        let kill = lock(&self.pending_kill).take();
        if let Some(kill) = kill {
            if let Err(e) = self.flip(&kill, raw).await {
                *lock(&self.pending_kill) = Some(kill);
                return Err(format!("cannot write the pending kill switch: {e}"));
            }
            tracing::warn!(
                "cluster: the kill switch applied while NATS was away is now in the bucket"
            );
        }
        let modes = read_all(&bucket, raw, &self.instance, true)
            .await
            .map_err(|e| e.to_string())?;
        for (route, applied) in modes {
            self.take_applied(&route, applied);
        }
        Ok(())
    }

    /// Starts without the bucket: the on-disk copy's modes (and kill switch), else the
    /// file's; loudly, since flips are refused until NATS is back.
    fn start_offline(&self, saved: Result<Option<offline::Copy>, String>, error: String) {
        self.online.store(false, Ordering::Relaxed);
        let (modes, from) = match saved {
            Ok(Some(saved)) => {
                tracing::error!(
                    error = %error,
                    copy = %self.copy.display(),
                    saved_at = %saved.saved_at,
                    "cluster: NATS unreachable at start; serving the last modes this instance applied (from its on-disk copy). Flips are refused until NATS is back; the instance joins the fleet then"
                );
                (saved.routes, StartedFrom::OfflineCopy)
            }
            Ok(None) => {
                tracing::error!(error = %error, "cluster: NATS unreachable at start and no on-disk copy of the fleet's modes yet; serving routes.toml's modes. Flips are refused until NATS is back; the instance joins the fleet then");
                (BTreeMap::new(), StartedFrom::File)
            }
            Err(e) => {
                tracing::error!(error = %error, copy_error = %e, "cluster: NATS unreachable at start and the on-disk copy is unusable; serving routes.toml's modes until NATS is back");
                (BTreeMap::new(), StartedFrom::File)
            }
        };
        *lock(&self.modes) = modes;
        *lock(&self.started_from) = from;
        *lock(&self.detail) = Some(error);
    }

    /// A connection for the command line (`strangler flip`, `strangler routes`): no seeding,
    /// no watch, no on-disk copy; fails when NATS is unreachable.
    pub async fn client(
        settings: ClusterConfig,
        config: &Config,
        config_path: &Path,
    ) -> Result<Arc<Self>, Unreachable> {
        let instance = format!("cli@{}", super::host_name());
        let bucket = Bucket::open(&settings, &instance).await?;
        let modes = read_all(&bucket, config.raw(), &instance, false).await?;
        Ok(Arc::new(Self {
            copy: offline::path(config.base_dir()),
            settings,
            instance,
            config_path: config_path.to_owned(),
            bucket: Mutex::new(Some(bucket)),
            modes: Mutex::new(modes),
            online: AtomicBool::new(true),
            started_from: Mutex::new(StartedFrom::Bucket),
            detail: Mutex::new(None),
            pending_kill: Mutex::new(None),
            warned: Mutex::new(Default::default()),
            causes: Mutex::new(Default::default()),
            writes: tokio::sync::Mutex::new(()),
            conflicts: AtomicU64::new(0),
            received: AtomicU64::new(0),
            keeps_copy: false,
            lease: Mutex::new(Default::default()),
            local: Mutex::new(BTreeMap::new()),
            heard: Mutex::new(BTreeMap::new()),
            members: Mutex::new(BTreeMap::new()),
            applied_notice: tokio::sync::Notify::new(),
        }))
    }

    /// `config` with the fleet's modes in place of the file's, checked again. A route whose
    /// file mode differs from the fleet's gets one warning per edit naming `strangler flip`.
    pub fn overlay(&self, config: Config) -> Result<Config, Diagnostics> {
        let modes = self.modes_for(config.raw());
        config.with_modes(&modes)
    }

    fn modes_for(&self, raw: &RawConfig) -> BTreeMap<String, (RouteMode, Option<f64>)> {
        let modes = lock(&self.modes);
        let mut warned = lock(&self.warned);
        let mut out = BTreeMap::new();
        for route in &raw.routes {
            let Some(applied) = modes.get(&route.id) else {
                continue;
            };
            let (file, fleet) = (file_stage(route), applied.stage());
            if same(file, fleet) {
                warned.remove(&route.id);
            } else if warned.get(&route.id).is_none_or(|w| !same(*w, file)) {
                tracing::warn!(
                    route = %route.id,
                    "routes.toml sets route `{}` to {file}, but in cluster mode modes live in the bucket `{}`: it stays {fleet} (revision {}); to change it, use `strangler flip {} {}`",
                    route.id, self.settings.bucket, applied.revision, route.id, file.mode
                );
                warned.insert(route.id.clone(), file);
            }
            out.insert(route.id.clone(), (applied.mode, applied.percent));
        }
        out
    }

    /// Writes `flip` to the bucket, compare-and-set on each route's revision (or on
    /// `flip.revision`, when the caller names the revision it saw), and applies it to this
    /// instance's modes; the caller reloads. `config` names the routes that exist. While NATS
    /// is away only the kill switch is accepted: it applies here at once and is written to
    /// the bucket when NATS returns.
    pub async fn flip(&self, flip: &Flip, config: &RawConfig) -> Result<Vec<Change>, FlipError> {
        let _serial = self.writes.lock().await;
        let bucket = lock(&self.bucket)
            .clone()
            .filter(|b| self.is_online() && b.is_connected());
        let Some(bucket) = bucket else {
            if is_kill_switch(flip) {
                return self.kill_offline(flip, config).await;
            }
            return Err(FlipError::Offline(format!(
                "cluster: NATS at {} is unreachable ({}), so flips are refused: a flip must reach every instance. Only the kill switch (`strangler flip --all legacy`, POST /admin/kill) applies while it is away; try again when NATS is back",
                self.settings.url,
                lock(&self.detail)
                    .clone()
                    .unwrap_or_else(|| "not connected".into())
            )));
        };
        match self.write(&bucket, flip, config).await {
            Ok(changes) => {
                self.record(&changes).await;
                Ok(changes)
            }
            // NATS went away before this instance noticed: the kill switch still applies.
            Err(FlipError::Offline(why)) if is_kill_switch(flip) => {
                self.go_offline(why);
                self.kill_offline(flip, config).await
            }
            Err(e) => Err(e),
        }
    }

    async fn write(
        &self,
        bucket: &Bucket,
        flip: &Flip,
        config: &RawConfig,
    ) -> Result<Vec<Change>, FlipError> {
        let routes: Vec<&crate::config::RouteConfig> = match &flip.target {
            Target::Route(id) => {
                let route = config.routes.iter().find(|r| r.id == *id).ok_or_else(|| {
                    let known: Vec<&str> = config.routes.iter().map(|r| r.id.as_str()).collect();
                    FlipError::File(format!(
                        "no route `{id}` in the file; known routes: {}",
                        known.join(", ")
                    ))
                })?;
                vec![route]
            }
            Target::All if flip.revision.is_some() => {
                return Err(FlipError::File(
                    "a revision names one route's version; give a route, not --all".into(),
                ));
            }
            Target::All => config.routes.iter().collect(),
        };
        let mut changes = Vec::new();
        for route in routes {
            let key = route_key(&route.id);
            let mut attempts = 0;
            loop {
                let (from, revision, _) = self.read(bucket, route).await?;
                let Some(to) = plan(&route.id, from, flip)? else {
                    break;
                };
                let record = ModeRecord {
                    correlation: flip.correlation.clone(),
                    ..ModeRecord::new(to, &flip.by, &self.instance, flip.reason.clone())
                }
                .encode();
                let expected = flip.revision.unwrap_or(revision);
                let written = bounded(bucket.store.update(&key, record, expected))
                    .await
                    .map_err(|e| self.offline_error(e))?;
                match written {
                    Ok(new) => {
                        self.note(&route.id, to, new);
                        changes.push(Change {
                            correlation: flip.correlation.clone(),
                            ..Change::new(&route.id, from, to, &flip.by, flip.reason.clone())
                        });
                        break;
                    }
                    Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                        attempts += 1;
                        if is_kill_switch(flip) && attempts < KILL_ATTEMPTS {
                            continue;
                        }
                        self.conflicts.fetch_add(1, Ordering::Relaxed);
                        let (current, revision, by) = self.read(bucket, route).await?;
                        return Err(FlipError::Conflict {
                            route: route.id.clone(),
                            current: current.to_string(),
                            revision,
                            by,
                            expected,
                        });
                    }
                    Err(e) => {
                        return Err(FlipError::Offline(format!(
                            "cluster: cannot write route `{}` to bucket `{}`: {e}; nothing was changed for it",
                            route.id, self.settings.bucket
                        )));
                    }
                }
            }
        }
        Ok(changes)
    }

    /// A route's stage in the bucket, its revision and who set it; the file's stage at
    /// revision 0 when the bucket has no record for it.
    async fn read(
        &self,
        bucket: &Bucket,
        route: &crate::config::RouteConfig,
    ) -> Result<(Stage, u64, String), FlipError> {
        let key = route_key(&route.id);
        let entry = bounded(bucket.store.entry(key.as_str()))
            .await
            .map_err(|e| self.offline_error(e))?
            .map_err(|e| self.offline_error(Unreachable(format!("cannot read `{key}`: {e}"))))?;
        match entry {
            Some(entry) if entry.operation == Operation::Put => {
                let record = ModeRecord::decode(&entry.value).map_err(|e| {
                    FlipError::File(format!(
                        "bucket `{}` key `{key}`: {e}",
                        self.settings.bucket
                    ))
                })?;
                let by = format!("{} on {}", record.by, record.instance);
                Ok((record.stage(), entry.revision, by))
            }
            Some(entry) => Ok((file_stage(route), entry.revision, "a delete".into())),
            None => Ok((file_stage(route), 0, "routes.toml".into())),
        }
    }

    fn offline_error(&self, e: Unreachable) -> FlipError {
        FlipError::Offline(format!(
            "{e}; the flip may not have been written, check `strangler routes`"
        ))
    }

    /// Applies a stage this instance wrote at `revision` (the watch then skips its echo).
    pub(super) fn note(&self, route: &str, to: Stage, revision: u64) {
        let mut modes = lock(&self.modes);
        let known = modes.get(route).map_or(0, |a| a.revision);
        if revision > known {
            modes.insert(
                route.to_owned(),
                Applied {
                    mode: to.mode,
                    percent: to.percent.filter(|_| to.mode == RouteMode::Canary),
                    revision,
                },
            );
        }
    }

    /// The kill switch while NATS is away: every route to legacy here and now; written to
    /// the bucket by the watch when NATS returns.
    async fn kill_offline(
        &self,
        flip: &Flip,
        config: &RawConfig,
    ) -> Result<Vec<Change>, FlipError> {
        let mut changes = Vec::new();
        {
            let mut modes = lock(&self.modes);
            for route in &config.routes {
                let (from, revision) = modes
                    .get(&route.id)
                    .map_or((file_stage(route), 0), |a| (a.stage(), a.revision));
                let Some(to) = plan(&route.id, from, flip)? else {
                    continue;
                };
                modes.insert(
                    route.id.clone(),
                    Applied {
                        mode: to.mode,
                        percent: None,
                        revision,
                    },
                );
                changes.push(Change::new(
                    &route.id,
                    from,
                    to,
                    &flip.by,
                    flip.reason.clone(),
                ));
            }
        }
        *lock(&self.pending_kill) = Some(flip.clone());
        tracing::error!(
            routes = changes.len(),
            "cluster: kill switch applied on this instance while NATS is away; it is written to the bucket when NATS returns"
        );
        self.record(&changes).await;
        if changes.is_empty() {
            // Nothing moved here, but the bucket may still hold other modes: keep the switch.
            self.save_copy().await;
        }
        Ok(changes)
    }

    /// Audit journal and on-disk copy after a write.
    async fn record(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        if let Err(e) = journal::append(&self.config_path, changes) {
            tracing::warn!(error = %e, "flip written to the bucket, but its audit record could not be");
        }
        self.save_copy().await;
    }

    /// Writes the on-disk copy of the applied modes (off the async threads).
    pub(super) async fn save_copy(&self) {
        if !self.keeps_copy {
            return;
        }
        let modes = self.applied();
        let pending = lock(&self.pending_kill).as_ref().map(PendingKill::of);
        let file = self.copy.clone();
        let bucket = self.settings.bucket.clone();
        let saved =
            tokio::task::spawn_blocking(move || offline::save(&file, &bucket, &modes, pending))
                .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(file = %self.copy.display(), error = %e, "cluster: cannot write the on-disk copy of the modes; a start without NATS would use older ones")
            }
            Err(e) => tracing::warn!(error = %e, "cluster: the copy task failed"),
        }
    }
}

/// With `seed`, writes the file's mode of every route the bucket does not know (an update
/// expecting revision 0 never overwrites), then reads every route's record.
pub(super) async fn read_all(
    bucket: &Bucket,
    raw: &RawConfig,
    instance: &str,
    seed: bool,
) -> Result<BTreeMap<String, Applied>, Unreachable> {
    let mut seeded = 0;
    let mut modes = BTreeMap::new();
    for route in &raw.routes {
        let key = route_key(&route.id);
        if seed {
            let record = ModeRecord::new(file_stage(route), "seed", instance, None).encode();
            match bounded(bucket.store.update(&key, record, 0)).await? {
                Ok(_) => seeded += 1,
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(Unreachable(format!("cannot seed `{key}`: {e}"))),
            }
        }
        let entry = bounded(bucket.store.entry(key.as_str()))
            .await?
            .map_err(|e| Unreachable(format!("cannot read `{key}`: {e}")))?;
        let Some(entry) = entry.filter(|e| e.operation == Operation::Put) else {
            continue;
        };
        match ModeRecord::decode(&entry.value) {
            Ok(record) => {
                modes.insert(
                    route.id.clone(),
                    Applied {
                        mode: record.mode,
                        percent: record.percent,
                        revision: entry.revision,
                    },
                );
            }
            Err(e) => {
                tracing::error!(key = %key, error = %e, "cluster: ignoring an unreadable record; the file's mode applies")
            }
        }
    }
    if seeded > 0 {
        tracing::info!(
            seeded,
            "cluster: seeded route modes from routes.toml into the bucket"
        );
    }
    Ok(modes)
}
