//! Checks of a route's `events` table and `[[routes.emit]]` rules. The rules are compiled by
//! `events::emit` itself, so their grammar (sources, pointers, statuses) lives in one place;
//! this maps its problems to keys such as `routes[2].emit[0].data.order_id`.

use super::Checks;
use crate::config::diagnostic::KeyPath;
use crate::config::schema::{RouteConfig, RouteEvents};
use crate::events::emit::{RuleKey, Rules, template_params};

/// Largest `events.max_body`: events travel through brokers with message size limits.
const MAX_EVENT_BODY: u64 = 1024 * 1024;

impl Checks<'_> {
    pub(super) fn route_events(&mut self, path: &KeyPath, route: &RouteConfig) {
        if let Some(RouteEvents::Settings(settings)) = &route.events {
            let key = path.key("events");
            for (i, name) in settings.headers.iter().flatten().enumerate() {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    self.push(
                        key.key("headers").index(i),
                        format!("`{name}` is not a header name"),
                        "use header names such as content-type or x-request-id",
                    );
                }
            }
            if let Some(max) = settings.max_body {
                if max.bytes() == 0 || max.bytes() > MAX_EVENT_BODY {
                    self.push(
                        key.key("max_body"),
                        format!("max_body {max} is out of range"),
                        "use a size from 1 byte to 1MiB, e.g. max_body = \"16KiB\"",
                    );
                }
            }
        }
        let params = template_params(&route.matcher.path);
        let Err(problems) = Rules::compile(&route.emit, &params, None) else {
            return;
        };
        for problem in problems {
            let rule = path.key("emit").index(problem.rule);
            let key = match &problem.at {
                RuleKey::Type => rule.key("type"),
                RuleKey::Method(i) => rule.key("when").key("methods").index(*i),
                RuleKey::Status(i) => rule.key("when").key("status").index(*i),
                RuleKey::Data(name) => rule.key("data").key(name),
            };
            self.push(key, problem.message, problem.hint);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Location, RouteEvents, from_toml_str};

    const HEAD: &str = "default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n[[routes]]\nid = \"orders\"\nmatch = { path = \"/api/orders/{id}\" }\nmode = \"legacy\"\n";

    fn problems(tail: &str) -> Vec<(String, usize, String)> {
        let err = from_toml_str(&format!("{HEAD}{tail}"), "t.toml").unwrap_err();
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
    fn valid_rules_and_settings_load() {
        let ok = format!(
            "{HEAD}events = {{ headers = [\"content-type\", \"authorization\"], bodies = true, max_body = \"16KiB\" }}\n[[routes.emit]]\ntype = \"shop.order.placed\"\nwhen = {{ methods = [\"POST\"], status = [201, \"2xx\"] }}\ndata = {{ order_id = \"response:/id\", sku = \"request:/sku\", id = \"param:id\", rid = \"header:x-request-id\" }}\n"
        );
        let config = from_toml_str(&ok, "t.toml").unwrap();
        let route = &config.raw().routes[0];
        assert_eq!(route.emit.len(), 1);
        assert_eq!(route.emit[0].data.len(), 4);
        assert!(matches!(&route.events, Some(RouteEvents::Settings(s)) if s.bodies));
        let off = format!("{HEAD}events = false\n");
        let config = from_toml_str(&off, "t.toml").unwrap();
        assert_eq!(
            config.raw().routes[0].events,
            Some(RouteEvents::Enabled(false))
        );
    }

    #[test]
    fn bad_rules_are_reported_with_lines() {
        let got = problems(
            "[[routes.emit]]\ntype = \"order placed\"\nwhen = { methods = [\"POST\"], status = [2001, \"2yy\"] }\n[routes.emit.data]\nid = \"response:id\"\nsku = \"body:/sku\"\nx = \"param:sku\"\nauth = \"header:authorization\"\n",
        );
        let keys: Vec<(&str, usize)> = got.iter().map(|(k, l, _)| (k.as_str(), *l)).collect();
        assert_eq!(
            keys,
            [
                ("routes[0].emit[0].type", 9),
                ("routes[0].emit[0].when.status[0]", 10),
                ("routes[0].emit[0].when.status[1]", 10),
                ("routes[0].emit[0].data.id", 12),
                ("routes[0].emit[0].data.sku", 13),
                ("routes[0].emit[0].data.x", 14),
                ("routes[0].emit[0].data.auth", 15),
            ],
            "{got:#?}"
        );
        assert!(got[3].2.contains("not a JSON pointer"), "{}", got[3].2);
        assert!(got[4].2.contains("unknown source `body:`"), "{}", got[4].2);
        assert!(got[5].2.contains("no parameter `{sku}`"), "{}", got[5].2);
        assert!(got[6].2.contains("always redacted"), "{}", got[6].2);
    }

    #[test]
    fn bad_shapes_are_caught() {
        let got = problems("events = \"yes\"\n[[routes.emit]]\nwhen = { status = [true] }\n");
        let keys: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
        assert!(keys.contains(&"routes[0].events"), "{got:#?}");
        assert!(keys.contains(&"routes[0].emit[0].type"), "{got:#?}");
        assert!(
            keys.contains(&"routes[0].emit[0].when.status[0]"),
            "{got:#?}"
        );
        let got = problems("events = { bodies = true, max_body = 0, headers = [\"a b\"] }\n");
        let mut keys: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["routes[0].events.headers[0]", "routes[0].events.max_body"]
        );
    }
}
