//! `strangler cluster export`: routes.toml with the fleet's modes written in. In cluster mode
//! the bucket, not the file, holds route modes, so the seed file drifts as routes are flipped;
//! export brings it back in line (`strangler cluster export > routes.toml`), keeping its
//! comments and layout through the same `toml_edit` editing that flips use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::cluster::Fleet;
use crate::rollout::{self, Stage};

/// What to do with the fleet.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print routes.toml with the modes (and canary percents) the fleet's bucket holds now;
    /// routes the bucket does not know keep the file's mode. A summary goes to stderr.
    Export {
        /// The routes file (its `[cluster]` names the bucket).
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
}

/// Runs a `strangler cluster` subcommand.
pub async fn run(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Export { config } => export(&config).await,
    }
}

async fn export(path: &Path) -> anyhow::Result<ExitCode> {
    if stdout_is(path) {
        bail!(
            "the output goes to {} itself, which the shell emptied before export could read it (`> routes.toml` with --config routes.toml): restore the file (version control, the ConfigMap; the modes are still in the bucket), then write the export to another file and move it over: `strangler cluster export > routes.new && mv routes.new routes.toml`",
            path.display()
        );
    }
    let loaded = match crate::config::load(path) {
        Ok(c) => c,
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!(
                "strangler: {} error(s) in {}; fix them and export again",
                diags.0.len(),
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(settings) = loaded.raw().cluster.clone() else {
        bail!(
            "{} has no [cluster] section, so there is no fleet to export modes from: the file's modes are the ones in use. Add [cluster] (see README, \"Running more than one instance\") or pass the fleet's routes file with --config",
            path.display()
        );
    };
    let (url, bucket) = (settings.url.clone(), settings.bucket.clone());
    let fleet = Fleet::client(settings, &loaded, path).await.map_err(|e| {
        anyhow::anyhow!(
            "{e}\ncannot export: the fleet's modes live in bucket `{bucket}` on the NATS at {url} (from [cluster] in {}); start NATS or fix [cluster] url, then export again. Nothing was printed",
            path.display()
        )
    })?;
    let stages: BTreeMap<String, Stage> = fleet
        .applied()
        .into_iter()
        .map(|(route, applied)| (route, applied.stage()))
        .collect();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (exported, changed) = rollout::set_stages(&text, &stages)
        .with_context(|| format!("cannot write the fleet's modes into {}", path.display()))?;
    if let Err(diags) = crate::config::from_toml_str(&exported, &path.display().to_string()) {
        bail!(
            "the fleet's modes make {} invalid, so nothing was printed:\n{diags}\nflip the routes named above to a mode the file allows (`strangler flip ROUTE MODE`), then export again",
            path.display()
        );
    }
    print!("{exported}");
    let total = loaded.raw().routes.len();
    let unknown = total - stages.len().min(total);
    let list = if changed.is_empty() {
        String::new()
    } else {
        format!(" ({})", changed.join(", "))
    };
    eprintln!(
        "strangler: {} of {total} route(s) changed from {}{list} to bucket `{}`'s modes; {unknown} not in the bucket kept the file's mode",
        changed.len(),
        path.display(),
        fleet.bucket_name()
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether stdout is the file at `path` (same device and inode): redirecting the export onto
/// the file it reads empties that file before it is read.
#[cfg(unix)]
fn stdout_is(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata("/dev/stdout"), std::fs::metadata(path)) {
        (Ok(out), Ok(file)) => out.dev() == file.dev() && out.ino() == file.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn stdout_is(_path: &Path) -> bool {
    false
}
