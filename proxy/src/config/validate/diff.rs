//! Checks of a route's `diff = { … }` table. The rules are compiled by `diff` itself, so the
//! pointer-pattern grammar lives in one place; this maps its problems to config keys such as
//! `routes[2].diff.ignore[0]`.

use super::Checks;
use crate::config::diagnostic::KeyPath;
use crate::config::schema::DiffConfig;
use crate::diff::DiffRules;

impl Checks<'_> {
    pub(super) fn diff(&mut self, path: &KeyPath, diff: &DiffConfig) {
        let Err(error) = DiffRules::new(diff) else {
            return;
        };
        for problem in error.0 {
            let mut key = path.key(problem.field);
            if let Some(i) = problem.index {
                key = key.index(i);
            }
            self.push(&key, problem.message, problem.hint);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Diagnostics, Location, from_toml_str};

    const HEAD: &str = "default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[[routes]]\nid = \"r\"\nmatch = { path = \"/r\" }\nmode = \"legacy\"\n";

    fn problems(diff: &str) -> Vec<(String, usize, String)> {
        let err: Diagnostics = from_toml_str(&format!("{HEAD}{diff}"), "t.toml").unwrap_err();
        err.iter()
            .map(|d| {
                let line = match &d.location {
                    Some(Location::File { line, .. }) => *line,
                    _ => 0,
                };
                (d.key.clone(), line, d.to_string())
            })
            .collect()
    }

    #[test]
    fn problems_name_the_key_and_line() {
        let got = problems(
            "[routes.diff]\nignore = [\n  \"/body/ok\",\n  \"items/*\",\n]\nheaders = [\"bad header\"]\nmax_differences = 0\n",
        );
        let keys: Vec<(&str, usize)> = got.iter().map(|(k, l, _)| (k.as_str(), *l)).collect();
        assert_eq!(
            keys,
            [
                ("routes[0].diff.ignore[1]", 11),
                ("routes[0].diff.headers[0]", 13),
                ("routes[0].diff.max_differences", 14),
            ],
            "{got:?}"
        );
        assert!(got[0].2.contains("must start with `/`"), "{}", got[0].2);
    }

    #[test]
    fn a_valid_table_loads_and_unknown_keys_are_caught() {
        let ok = format!(
            "{HEAD}diff = {{ ignore = [\"/body/items/*/at\"], unordered = [\"/body/items\"], timestamp_tolerance = \"2s\", max_body = \"1MiB\", relative_tolerance = 1e-6 }}\n"
        );
        let config = from_toml_str(&ok, "t.toml").unwrap();
        let diff = config.raw().routes[0].diff.clone().unwrap();
        assert_eq!(diff.max_body.bytes(), 1 << 20);
        assert_eq!(diff.max_differences, 50);
        let got = problems("diff = { ignroe = [\"/body/a\"] }\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].2.contains("did you mean `ignore`?"), "{}", got[0].2);
        assert_eq!(got[0].1, 8);
    }
}
