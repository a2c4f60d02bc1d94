//! `strangler flip`: change a route's mode (or every route's, with `--all`) in routes.toml.
//! The work is [`crate::rollout::flip_file`]; this is its command-line face.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::ModeArg;
use crate::config::RouteMode;
use crate::rollout::{self, Flip, Stage, Target};

/// Runs `strangler flip` with its parsed arguments.
pub fn run(
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
    };
    let changes = rollout::flip_file(config, &flip)?;
    if changes.is_empty() {
        println!("nothing to change: every route is already {to}");
    }
    for change in &changes {
        let why = change
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        println!("{}: {} → {}{why}", change.route, change.from, change.to);
    }
    if !changes.is_empty() {
        println!(
            "written to {}; a running proxy applies it now",
            config.display()
        );
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
