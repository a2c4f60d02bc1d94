//! `strangler flip`: change one route's mode in routes.toml, keeping its comments and layout.
//!
//! The edited text is validated before it replaces the file, and the file is replaced by
//! write-to-temp-and-rename, so a failed flip leaves the old file intact and a running proxy
//! never reads a half-written file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use toml_edit::{DocumentMut, value};

use crate::config::{self, RouteMode};

/// Sets `route`'s mode (and canary percent) in the file at `path`.
pub fn flip(path: &Path, route: &str, mode: RouteMode, percent: Option<f64>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let edited = edit(&text, route, mode, percent)?;
    if let Err(diags) = config::from_toml_str(&edited, &path.display().to_string()) {
        bail!(
            "the flip would make {} invalid, so it was not written:\n{diags}",
            path.display()
        );
    }
    write_atomically(path, &edited)
}

/// The file's text with the flip applied.
pub fn edit(
    text: &str,
    route: &str,
    mode: RouteMode,
    percent: Option<f64>,
) -> anyhow::Result<String> {
    let mut doc: DocumentMut = text.parse().context("the routes file is not valid TOML")?;
    let routes = doc
        .get_mut("routes")
        .and_then(|r| r.as_array_of_tables_mut())
        .context("the routes file has no [[routes]]")?;
    let mut known = Vec::new();
    let mut target = None;
    for table in routes.iter_mut() {
        let id = table
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        if id == route {
            target = Some(table);
            break;
        }
        known.push(id);
    }
    let Some(table) = target else {
        bail!(
            "no route `{route}` in the file; known routes: {}",
            known.join(", ")
        );
    };
    table["mode"] = value(mode.as_str());
    match (mode, percent) {
        (RouteMode::Canary, Some(p)) => {
            if !(0.0..=100.0).contains(&p) {
                bail!("--percent must be between 0 and 100, got {p}");
            }
            let canary = table.entry("canary").or_insert(toml_edit::Item::Value(
                toml_edit::Value::InlineTable(Default::default()),
            ));
            let number = if p.fract() == 0.0 {
                value(p as i64)
            } else {
                value(p)
            };
            match canary {
                toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                    t.insert(
                        "percent",
                        number
                            .into_value()
                            .map_err(|_| anyhow::anyhow!("bad percent"))?,
                    );
                }
                toml_edit::Item::Table(t) => {
                    t["percent"] = number;
                }
                _ => bail!("route `{route}` has a `canary` that is not a table"),
            }
        }
        (RouteMode::Canary, None) if table.get("canary").is_none() => {
            bail!("canary needs a share: add --percent N");
        }
        (_, Some(_)) => bail!("--percent only goes with mode canary"),
        _ => {}
    }
    Ok(doc.to_string())
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile_in(folder)?;
    temp.1
        .write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", temp.0.display()))?;
    temp.1.sync_all().ok();
    drop(temp.1);
    std::fs::rename(&temp.0, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

fn tempfile_in(folder: &Path) -> anyhow::Result<(std::path::PathBuf, std::fs::File)> {
    let name = format!(".routes.toml.{}.tmp", std::process::id());
    let path = folder.join(name);
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok((path, file))
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
mode = "legacy"
extracted = "misc"
"#;

    #[test]
    fn flips_keeping_comments() {
        let out = edit(FILE, "thumbnail", RouteMode::Shadow, None).unwrap();
        assert!(out.contains("# the monolith"));
        assert!(out.contains("# resize images"));
        assert!(out.contains("mode = \"shadow\""));
    }

    #[test]
    fn canary_percent_added() {
        let out = edit(FILE, "thumbnail", RouteMode::Canary, Some(25.0)).unwrap();
        assert!(out.contains("percent = 25"), "{out}");
    }

    #[test]
    fn unknown_route_names_known_ones() {
        let err = edit(FILE, "nope", RouteMode::Shadow, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("thumbnail"), "{err}");
    }
}
