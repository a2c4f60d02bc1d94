//! Changing route modes in routes.toml: the file side of the one write path shared by
//! `strangler flip`, the admin API and the automatic rollout (see [`super::write`]; in
//! cluster mode the same [`Flip`] and [`plan`] go to the fleet's bucket instead).
//!
//! The text is edited with `toml_edit`, so comments and layout survive; the result is
//! validated before it replaces the file, and the file is replaced by write-to-temp-and-rename,
//! so a failed flip leaves the old file intact and a running proxy never reads half a file.
//! The running proxy then applies the new file through its ordinary reload path.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value, value};

use super::journal::{self, Change};
use super::lifecycle::{self, Stage, TransitionError};
use crate::config::{self, RouteMode};

/// Which routes a flip moves.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// One route by id.
    Route(String),
    /// Every route (the kill switch: `flip --all legacy`).
    All,
}

/// A requested change of mode.
#[derive(Debug, Clone)]
pub struct Flip {
    /// Which routes.
    pub target: Target,
    /// The stage to move to.
    pub to: Stage,
    /// Allow the transitions that skip evidence.
    pub force: bool,
    /// Who asks: an admin token's name, `cli`, `rollout`.
    pub by: String,
    /// Why, in the asker's words.
    pub reason: Option<String>,
    /// The correlation id of the automatic decision behind the flip, if any.
    pub correlation: Option<String>,
    /// Cluster mode: the route's revision the asker saw; the flip is refused when the route
    /// changed since (compare-and-set). `None`: the revision read just before writing.
    pub revision: Option<u64>,
}

/// Why a flip was not written.
#[derive(Debug, thiserror::Error)]
pub enum FlipError {
    /// The file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML or has no such route.
    #[error("{0}")]
    File(String),
    /// The lifecycle forbids the move.
    #[error("route `{route}`: {error}")]
    Transition {
        /// Route id.
        route: String,
        /// Why.
        error: TransitionError,
    },
    /// Cluster mode: someone else changed the route first (compare-and-set lost).
    #[error(
        "route `{route}` was changed by someone else first: it is now {current} (revision {revision}, set by {by}; this flip expected revision {expected}); look at it and flip again if you still mean it"
    )]
    Conflict {
        /// Route id.
        route: String,
        /// The stage it has now.
        current: String,
        /// Its revision now.
        revision: u64,
        /// Who set it.
        by: String,
        /// The revision the flip was based on.
        expected: u64,
    },
    /// Cluster mode: the fleet's store cannot be reached, so the flip was not written.
    #[error("{0}")]
    Offline(String),
    /// The edited file would not validate.
    #[error("the flip would make {path} invalid, so it was not written:\n{diagnostics}")]
    Invalid {
        /// The file.
        path: String,
        /// The problems.
        diagnostics: config::Diagnostics,
    },
}

/// Applies `flip` to the file at `path` and records it in the audit journal beside it.
/// Returns the changes made (empty when `--all` found nothing to move).
pub fn flip_file(path: &Path, flip: &Flip) -> Result<Vec<Change>, FlipError> {
    // Flips are read-modify-write: two at once (CLI and admin, or two threads) must not lose
    // one another's change. One at a time in this process, and across processes by a lock file.
    static IN_PROCESS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = IN_PROCESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if flip.revision.is_some() {
        return Err(FlipError::File(
            "a revision only applies in cluster mode ([cluster] in routes.toml); leave it out"
                .into(),
        ));
    }
    let _lock = FileLock::acquire(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| FlipError::Io {
        what: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let (edited, changes) = edit(&text, flip)?;
    if changes.is_empty() {
        return Ok(changes);
    }
    if let Err(diagnostics) = config::from_toml_str(&edited, &path.display().to_string()) {
        return Err(FlipError::Invalid {
            path: path.display().to_string(),
            diagnostics,
        });
    }
    write_atomically(path, &edited)?;
    if let Err(e) = journal::append(path, &changes) {
        tracing::warn!(error = %e, "flip written, but its audit record could not be");
    }
    Ok(changes)
}

/// The file's text with `flip` applied, and the changes it makes.
pub fn edit(text: &str, flip: &Flip) -> Result<(String, Vec<Change>), FlipError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| FlipError::File(format!("the routes file is not valid TOML: {e}")))?;
    let routes = doc
        .get_mut("routes")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| FlipError::File("the routes file has no [[routes]]".into()))?;
    let mut changes = Vec::new();
    let mut known = Vec::new();
    for table in routes.iter_mut() {
        let id = table
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let wanted = match &flip.target {
            Target::Route(route) => *route == id,
            Target::All => true,
        };
        if !wanted {
            known.push(id);
            continue;
        }
        let from = current_stage(table);
        let Some(to) = plan(&id, from, flip)? else {
            continue;
        };
        apply(table, to);
        changes.push(Change {
            correlation: flip.correlation.clone(),
            ..Change::new(&id, from, to, &flip.by, flip.reason.clone())
        });
    }
    if let Target::Route(route) = &flip.target {
        if changes.is_empty() {
            return Err(FlipError::File(format!(
                "no route `{route}` in the file; known routes: {}",
                known.join(", ")
            )));
        }
    }
    Ok((doc.to_string(), changes))
}

/// The file's text with each route named in `stages` set to that stage, whatever the
/// lifecycle says (`strangler cluster export` writes the fleet's modes back into the seed
/// file), and the ids of the routes whose stage changed. Routes not in `stages` keep theirs.
pub fn set_stages(
    text: &str,
    stages: &std::collections::BTreeMap<String, Stage>,
) -> Result<(String, Vec<String>), FlipError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| FlipError::File(format!("the routes file is not valid TOML: {e}")))?;
    let routes = doc
        .get_mut("routes")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| FlipError::File("the routes file has no [[routes]]".into()))?;
    let mut changed = Vec::new();
    for table in routes.iter_mut() {
        let id = table.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        let Some(to) = stages.get(id).copied() else {
            continue;
        };
        let from = current_stage(table);
        let same_percent = to.mode != RouteMode::Canary || from.percent == to.percent;
        if from.mode == to.mode && same_percent {
            continue;
        }
        changed.push(id.to_owned());
        apply(table, to);
    }
    Ok((doc.to_string(), changed))
}

/// What `flip` does to route `id`, now at `from`: `Some(stage)` moves it there, `None` leaves
/// it (`--all` skipping a route already there, or a retired one without `--force`); an
/// error refuses the whole flip.
pub(crate) fn plan(id: &str, from: Stage, flip: &Flip) -> Result<Option<Stage>, FlipError> {
    let to = Stage {
        percent: flip.to.percent.or(from.percent),
        ..flip.to
    };
    match lifecycle::check(from, to, flip.force) {
        Ok(()) => Ok(Some(to)),
        Err(TransitionError::Unchanged(_)) if flip.target == Target::All => Ok(None),
        Err(TransitionError::Unretire { .. }) if flip.target == Target::All && !flip.force => {
            tracing::warn!(route = %id, "kill switch leaves retired route `{id}` alone (use --force)");
            Ok(None)
        }
        Err(error) => Err(FlipError::Transition {
            route: id.to_owned(),
            error,
        }),
    }
}

/// The stage a route table describes.
fn current_stage(table: &Table) -> Stage {
    let mode = match table.get("mode").and_then(|v| v.as_str()) {
        Some("shadow") => RouteMode::Shadow,
        Some("canary") => RouteMode::Canary,
        Some("extracted") => RouteMode::Extracted,
        Some("retired") => RouteMode::Retired,
        _ => RouteMode::Legacy,
    };
    let percent = table
        .get("canary")
        .and_then(|c| c.get("percent"))
        .and_then(|p| p.as_float().or_else(|| p.as_integer().map(|i| i as f64)));
    Stage { mode, percent }
}

fn apply(table: &mut Table, to: Stage) {
    table["mode"] = value(to.mode.as_str());
    let Some(percent) = to.percent.filter(|_| to.mode == RouteMode::Canary) else {
        return;
    };
    let number = if percent.fract() == 0.0 {
        Value::from(percent as i64)
    } else {
        Value::from(percent)
    };
    match table
        .entry("canary")
        .or_insert(Item::Value(Value::InlineTable(Default::default())))
    {
        Item::Value(Value::InlineTable(t)) => {
            t.insert("percent", number);
        }
        Item::Table(t) => {
            t["percent"] = Item::Value(number);
        }
        other => {
            let mut t = toml_edit::InlineTable::new();
            t.insert("percent", number);
            *other = Item::Value(Value::InlineTable(t));
        }
    }
}

/// `<routes file>.lock` beside the file, held while a flip reads and rewrites it.
struct FileLock(PathBuf);

impl FileLock {
    fn acquire(config: &Path) -> Result<Self, FlipError> {
        let mut name = config
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "routes.toml".into());
        name.push(".lock");
        let lock = config.with_file_name(name);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => return Ok(Self(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock left by a crashed flip is stale after 30 s.
                    let stale = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| {
                            t.elapsed().unwrap_or_default() > std::time::Duration::from_secs(30)
                        });
                    if stale {
                        let _ = std::fs::remove_file(&lock);
                    } else if std::time::Instant::now() > deadline {
                        return Err(FlipError::File(format!(
                            "another flip holds {}; try again (delete it if no flip is running)",
                            lock.display()
                        )));
                    } else {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
                Err(source) => {
                    return Err(FlipError::Io {
                        what: "cannot create the lock",
                        path: lock,
                        source,
                    });
                }
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<(), FlipError> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().map_or_else(
        || "routes.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let io = |what, source| FlipError::Io {
        what,
        path: temp.clone(),
        source,
    };
    let mut file = std::fs::File::create(&temp).map_err(|e| io("cannot create", e))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io("cannot write", e));
    }
    std::fs::rename(&temp, path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        FlipError::Io {
            what: "cannot replace",
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"default_upstream = "legacy"
# the monolith
[upstreams.legacy]
url = "http://127.0.0.1:8081"
[upstreams.misc]
url = "http://127.0.0.1:8082"

[[routes]]
id = "thumbnail"   # resize images
match = { path = "/misc/thumbnail" }
mode = "shadow"
extracted = "misc"

[[routes]]
id = "gone"
match = { path = "/misc/old" }
mode = "retired"
extracted = "misc"
"#;

    fn flip(target: Target, to: Stage, force: bool) -> Flip {
        Flip {
            target,
            to,
            force,
            by: "test".into(),
            reason: None,
            correlation: None,
            revision: None,
        }
    }

    #[test]
    fn flips_keeping_comments_and_reports_the_change() {
        let (out, changes) = edit(
            FILE,
            &flip(
                Target::Route("thumbnail".into()),
                Stage::canary(25.0),
                false,
            ),
        )
        .unwrap();
        assert!(out.contains("# the monolith") && out.contains("# resize images"));
        assert!(out.contains("mode = \"canary\""));
        assert!(out.contains("canary = { percent = 25 }"), "{out}");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].from, "shadow");
        assert_eq!(changes[0].to, "canary 25%");
    }

    #[test]
    fn transitions_are_checked() {
        let err = edit(
            FILE,
            &flip(
                Target::Route("thumbnail".into()),
                Stage::new(RouteMode::Retired),
                false,
            ),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(
            edit(
                FILE,
                &flip(
                    Target::Route("thumbnail".into()),
                    Stage::new(RouteMode::Retired),
                    true
                )
            )
            .is_ok()
        );
    }

    #[test]
    fn kill_switch_moves_all_but_retired() {
        let (out, changes) = edit(
            FILE,
            &flip(Target::All, Stage::new(RouteMode::Legacy), false),
        )
        .unwrap();
        assert_eq!(changes.len(), 1);
        assert!(out.contains("mode = \"retired\""));
        let (_, changes) = edit(
            FILE,
            &flip(Target::All, Stage::new(RouteMode::Legacy), true),
        )
        .unwrap();
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn concurrent_flips_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        let mut text = String::from(FILE);
        for i in 0..8 {
            text.push_str(&format!(
                "\n[[routes]]\nid = \"r{i}\"\nmatch = {{ path = \"/r{i}\" }}\nmode = \"legacy\"\nextracted = \"misc\"\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        std::thread::scope(|scope| {
            for i in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    flip_file(
                        path,
                        &flip(
                            Target::Route(format!("r{i}")),
                            Stage::new(RouteMode::Shadow),
                            false,
                        ),
                    )
                    .unwrap();
                });
            }
        });
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after.matches("mode = \"shadow\"").count(),
            9,
            "every flip landed:\n{after}"
        );
        assert_eq!(journal::recent(&path, 100).len(), 8);
        assert!(
            !path.with_file_name("routes.toml.lock").exists(),
            "the lock is released"
        );
    }

    #[test]
    fn set_stages_writes_any_stage_and_names_the_changed_routes() {
        let stages = [
            ("thumbnail".to_owned(), Stage::canary(12.5)),
            ("gone".to_owned(), Stage::new(RouteMode::Retired)),
            ("absent".to_owned(), Stage::new(RouteMode::Legacy)),
        ]
        .into_iter()
        .collect();
        let (out, changed) = set_stages(FILE, &stages).unwrap();
        assert_eq!(changed, ["thumbnail"]);
        assert!(out.contains("# the monolith") && out.contains("# resize images"));
        assert!(out.contains("canary = { percent = 12.5 }"), "{out}");
        let back = [("gone".to_owned(), Stage::new(RouteMode::Legacy))]
            .into_iter()
            .collect();
        let (out, changed) = set_stages(&out, &back).unwrap();
        assert_eq!(
            changed,
            ["gone"],
            "no lifecycle check: retired → legacy is written"
        );
        assert!(out.contains("mode = \"legacy\""), "{out}");
    }

    #[test]
    fn unknown_route_names_known_ones() {
        let err = edit(
            FILE,
            &flip(
                Target::Route("nope".into()),
                Stage::new(RouteMode::Legacy),
                false,
            ),
        )
        .unwrap_err();
        assert!(err.to_string().contains("thumbnail"), "{err}");
    }
}
