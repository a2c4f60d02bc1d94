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
