//! `strangler flip`: change a route's mode (or every route's, with `--all`). Without
//! `[cluster]` the work is [`crate::rollout::flip_file`] on routes.toml; with it, the flip is
//! written to the fleet's bucket with compare-and-set, and every instance applies it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::ModeArg;
use crate::cluster::Fleet;
use crate::config::RouteMode;
use crate::rollout::{self, Flip, Stage, Target};

/// Runs `strangler flip` with its parsed arguments.
pub async fn run(
    config: &Path,
    route: Option<String>,
    mode: Option<ModeArg>,
    all: bool,
    percent: Option<f64>,
    force: bool,
    reason: Option<String>,
) -> anyhow::Result<ExitCode> {
    // With --all, clap puts the lone positional (the mode) in `route`.
    let (target, mode) = match (all, route, mode) {
        (true, Some(mode), None) => (Target::All, parse_mode(&mode)?),
        (true, None, Some(mode)) => (Target::All, RouteMode::from(mode)),
        (true, _, _) => bail!("with --all give only the mode, e.g. `strangler flip --all legacy`"),
        (false, Some(route), Some(mode)) => (Target::Route(route), RouteMode::from(mode)),
        (false, _, _) => bail!("give a route and a mode, e.g. `strangler flip currency shadow`"),
    };
    if percent.is_some() && mode != RouteMode::Canary {
        bail!("--percent only goes with mode canary");
    }
    let to = Stage { mode, percent };
    let flip = Flip {
        target,
        to,
        force,
        by: "cli".into(),
        reason,
        correlation: None,
        revision: None,
    };
    let loaded = crate::config::load(config);
    let cluster = loaded
        .as_ref()
        .ok()
        .and_then(|c| c.raw().cluster.clone().map(|s| (c, s)));
    let (changes, fleet) = match cluster {
        Some((loaded, settings)) => {
            let url = settings.url.clone();
            let fleet = match Fleet::client(settings, loaded, config).await {
                Ok(fleet) => fleet,
                Err(e) => bail!(
                    "{e}\nflips are refused while the fleet's NATS at {url} is away: a flip must reach every instance. The kill switch still works on each running instance: POST /admin/kill on its admin API (with the admin token)"
                ),
            };
            (fleet.flip(&flip, loaded.raw()).await?, Some(fleet))
        }
        None => (rollout::flip_file(config, &flip)?, None),
    };
    if changes.is_empty() {
        println!("nothing to change: every route is already {to}");
    }
    for change in &changes {
        let why = change
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let revision = fleet
            .as_ref()
            .and_then(|f| f.revision(&change.route))
            .map(|r| format!(" [revision {r}]"))
            .unwrap_or_default();
        println!(
            "{}: {} → {}{why}{revision}",
            change.route, change.from, change.to
        );
    }
    match (&fleet, changes.is_empty()) {
        (_, true) => {}
        (Some(fleet), false) => println!(
            "written to bucket `{}`; every instance of the fleet applies it now",
            fleet.bucket_name()
        ),
        (None, false) => println!(
            "written to {}; a running proxy applies it now",
            config.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_mode(text: &str) -> anyhow::Result<RouteMode> {
    Ok(match text {
        "legacy" => RouteMode::Legacy,
        "shadow" => RouteMode::Shadow,
        "canary" => RouteMode::Canary,
        "extracted" => RouteMode::Extracted,
        "retired" => RouteMode::Retired,
        other => bail!("`{other}` is not a mode; use legacy, shadow, canary, extracted or retired"),
    })
}
