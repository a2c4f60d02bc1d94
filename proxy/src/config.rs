//! `routes.toml`: schema, loading and validation.
//!
//! Three steps, three types (STYLE.md rule 4): the file (plus `STRANGLER__…` environment
//! overrides, through the `config` crate) is deserialized into [`RawConfig`]; [`validate()`]
//! checks it and yields a [`Config`]; `routing` compiles that into the table the data path
//! reads. Every problem found is a [`Diagnostic`] naming the key, the file and line, and what
//! to do; all of them are reported at once, not just the first.
//!
//! A load runs, in order: a TOML parse with `toml_edit` (a syntax error stops here; its
//! spans give every key's line, see `locate`); the `config` crate merges the file with the
//! environment (see `env` for why its keys are resolved against the file first); a walk of
//! the merged value against the schema (`shape`) reports all unknown keys, missing keys and
//! wrong types; serde reads what is left; semantic checks (`validate`) run on the result.
//!
//! Never: panic on any input, or stop at the first problem when later ones can be found.

mod diagnostic;
mod env;
mod locate;
pub mod schema;
mod shape;
mod units;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use config::{FileFormat, Source, Value, ValueKind};
use serde::Deserialize;

pub use diagnostic::{Diagnostic, Diagnostics, Location};
pub use schema::*;
pub use units::ByteSize;
pub(crate) use validate::DEFAULT_BUS_PATH;

use diagnostic::KeyPath;
use locate::Locator;

/// A validated configuration: every upstream a route or `default_upstream` names exists,
/// every mode has what it needs (`extracted`, `canary`), addresses, URLs and path templates
/// parse, and a `log` bus has a `path`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The checked values.
    raw: RawConfig,
    /// Where they came from.
    origin: Origin,
    /// Folder that relative paths in the file are resolved against.
    base_dir: PathBuf,
    /// Key → line, for diagnostics found later (e.g. by `routing`).
    locator: Arc<Locator>,
}

impl Config {
    /// The checked values.
    pub fn raw(&self) -> &RawConfig {
        &self.raw
    }

    /// Where the configuration came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The folder of the config file; relative paths in it (TLS files, the event log) are
    /// relative to this.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The same configuration with the modes of the routes in `modes` replaced (mode and
    /// canary percent), checked again: in cluster mode the fleet's modes override the file's,
    /// and a mode brings its own requirements (an `extracted` upstream, a canary share).
    pub fn with_modes(
        mut self,
        modes: &std::collections::BTreeMap<String, (RouteMode, Option<f64>)>,
    ) -> Result<Config, Diagnostics> {
        for route in &mut self.raw.routes {
            let Some((mode, percent)) = modes.get(&route.id) else {
                continue;
            };
            route.mode = *mode;
            if let Some(percent) = percent {
                match &mut route.canary {
                    Some(canary) => canary.percent = *percent,
                    None => route.canary = Some(CanaryConfig::with_percent(*percent)),
                }
            }
        }
        let diags = validate::check(&mut self.raw, &self.base_dir, &self.locator);
        if diags.is_empty() {
            Ok(self)
        } else {
            Err(self.locate(diags))
        }
    }

    /// Attaches file:line (or the environment variable) to diagnostics found by others, such
    /// as `routing`'s overlap check reporting `routes[3].match`. Diagnostics that already have
    /// a location keep it.
    pub fn locate(&self, diags: Vec<Diagnostic>) -> Diagnostics {
        Diagnostics(diags.into_iter().map(|d| self.locator.fill(d)).collect())
    }
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A file on disk, as the user named it.
    File(PathBuf),
    /// Text given directly; the name used in messages.
    Text(String),
}

/// Reads the file, applies `STRANGLER__…` overrides from the process environment, validates.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.to_ascii_uppercase().starts_with(env::PREFIX))
        .collect();
    load_with_env(path, &env)
}

/// Like [`load`], with an explicit environment (tests never set process variables).
pub fn load_with_env(path: &Path, env: &HashMap<String, String>) -> Result<Config, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![
            Diagnostic::new("", format!("cannot read {}: {e}", path.display()))
                .hint("check the path, or pass --config PATH"),
        ])
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.display().to_string();
    load_text(
        &text,
        &name,
        Origin::File(path.to_path_buf()),
        base_dir,
        env,
    )
}

/// Parses and validates `text` (no environment); `name` stands for the file in messages.
/// Relative paths are resolved against the current directory.
pub fn from_toml_str(text: &str, name: &str) -> Result<Config, Diagnostics> {
    load_text(
        text,
        name,
        Origin::Text(name.to_owned()),
        PathBuf::from("."),
        &HashMap::new(),
    )
}

/// Validates a configuration built in memory (e.g. after an admin edit); its diagnostics
/// carry keys but no lines.
pub fn validate(mut raw: RawConfig, base_dir: &Path) -> Result<Config, Diagnostics> {
    let locator = Locator::detached();
    let diags = validate::check(&mut raw, base_dir, &locator);
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    Ok(Config {
        raw,
        origin: Origin::Text("(in memory)".to_owned()),
        base_dir: base_dir.to_path_buf(),
        locator: Arc::new(locator),
    })
}

fn load_text(
    text: &str,
    name: &str,
    origin: Origin,
    base_dir: PathBuf,
    env: &HashMap<String, String>,
) -> Result<Config, Diagnostics> {
    let mut locator = Locator::parse(name, text).map_err(|d| Diagnostics(vec![d]))?;
    let file_level = |message: String| {
        let at = Location::File {
            path: name.to_owned(),
            line: 1,
            column: 1,
        };
        Diagnostics(vec![Diagnostic::new("", message).at(at)])
    };

    // The file alone, to resolve environment keys against.
    let file = config::File::from_str(text, FileFormat::Toml);
    let file_value = file
        .collect()
        .map_err(|e| file_level(format!("cannot read the file: {e}")))?;
    let file_value = Value::new(None, ValueKind::Table(file_value));
    let (overrides, mut diags) = env::overrides(env, &file_value);

    let mut builder = config::Config::builder().add_source(file);
    for o in overrides {
        let at = Location::Env { var: o.var.clone() };
        match builder.clone().set_override(&o.expr, o.value) {
            Ok(b) => {
                builder = b;
                locator.add_env(o.path, o.var);
            }
            Err(e) => diags.push(Diagnostic::new(o.path.to_string(), e.to_string()).at(at)),
        }
    }
    let merged = builder
        .build()
        .and_then(|c| c.collect())
        .map_err(|e| file_level(format!("cannot merge the configuration: {e}")))?;
    let mut merged = Value::new(None, ValueKind::Table(merged));

    let (shape_diags, quiet) = shape::check(&mut merged, &locator);
    diags.extend(shape_diags);
    // Keys already reported on: problems under them are consequences, not news.
    let mut covered: Vec<KeyPath> = diags
        .iter()
        .filter(|d| !d.key.is_empty())
        .map(|d| KeyPath::parse(&d.key))
        .collect();
    covered.extend(quiet);
    match RawConfig::deserialize(merged) {
        Ok(mut raw) => {
            for d in validate::check(&mut raw, &base_dir, &locator) {
                push_new(&mut diags, &covered, d, false);
            }
            if diags.is_empty() {
                Ok(Config {
                    raw,
                    origin,
                    base_dir,
                    locator: Arc::new(locator),
                })
            } else {
                Err(sorted(diags, &locator))
            }
        }
        Err(e) => {
            push_new(&mut diags, &covered, serde_diagnostic(e), true);
            Err(sorted(diags, &locator))
        }
    }
}

/// Adds `diag` unless its key lies under a covered key (or, with `related_too`, covers one):
/// a removed bad value must not be reported again as missing or out of range.
fn push_new(diags: &mut Vec<Diagnostic>, covered: &[KeyPath], diag: Diagnostic, related_too: bool) {
    let key = KeyPath::parse(&diag.key);
    let seen = covered
        .iter()
        .any(|c| key.starts_with(c) || (related_too && c.starts_with(&key)));
    if !seen {
        diags.push(diag);
    }
}

fn serde_diagnostic(e: config::ConfigError) -> Diagnostic {
    match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => Diagnostic::new(
            key.unwrap_or_default(),
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At { error, key, .. } => {
            Diagnostic::new(key.unwrap_or_default(), error.to_string())
        }
        config::ConfigError::NotFound(key) => {
            let field = KeyPath::parse(&key).last_key().to_owned();
            Diagnostic::new(key, format!("missing required key `{field}`"))
        }
        other => Diagnostic::new("", other.to_string()),
    }
}

/// Locates every diagnostic and orders them: file order, then environment variables.
fn sorted(diags: Vec<Diagnostic>, locator: &Locator) -> Diagnostics {
    let mut diags: Vec<Diagnostic> = diags.into_iter().map(|d| locator.fill(d)).collect();
    diags.sort_by_key(|d| match &d.location {
        Some(Location::File { line, column, .. }) => (0, *line, *column, String::new()),
        Some(Location::Env { var }) => (1, 0, 0, var.clone()),
        None => (2, 0, 0, String::new()),
    });
    Diagnostics(diags)
}

#[cfg(test)]
mod tests;
