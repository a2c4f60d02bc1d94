//! Checks of `[[routes]]`: ids, upstream references, mode requirements, and the matcher
//! (path template, methods, host, headers).

use std::collections::{HashMap, HashSet};

use super::Checks;
use crate::config::diagnostic::KeyPath;
use crate::config::schema::{CanaryConfig, MatchConfig, PromoteConfig, RouteConfig, RouteMode};

impl Checks<'_> {
    pub(super) fn routes(&mut self) {
        let raw = self.raw;
        let mut first_use: HashMap<&str, usize> = HashMap::new();
        for (i, route) in raw.routes.iter().enumerate() {
            let path = KeyPath::default().key("routes").index(i);
            self.route(&path, route);
            if route.id.is_empty() {
                continue;
            }
            if let Some(&first) = first_use.get(route.id.as_str()) {
                let first_path = KeyPath::default().key("routes").index(first).key("id");
                let at = self
                    .locator
                    .describe(&first_path)
                    .map(|w| format!(", at {w}"))
                    .unwrap_or_default();
                self.push(
                    path.key("id"),
                    format!(
                        "duplicate route id \"{}\": first used by routes[{first}]{at}",
                        route.id
                    ),
                    "give each route its own id",
                );
            } else {
                first_use.insert(&route.id, i);
            }
        }
    }

    fn route(&mut self, path: &KeyPath, route: &RouteConfig) {
        if route.id.is_empty() {
            self.push(
                path.key("id"),
                "the route id is empty",
                "e.g. id = \"thumbnail\"",
            );
        } else if !route
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.push(
                path.key("id"),
                format!(
                    "route id \"{}\" may contain only letters, digits, `-` and `_`",
                    route.id
                ),
                "e.g. id = \"misc-thumbnail\"",
            );
        }
        if let Some(legacy) = &route.legacy {
            self.upstream_ref(&path.key("legacy"), legacy, "legacy");
        }
        match &route.extracted {
            Some(extracted) => self.upstream_ref(&path.key("extracted"), extracted, "extracted"),
            None if route.mode != RouteMode::Legacy => {
                let others: Vec<&str> = self
                    .raw
                    .upstreams
                    .keys()
                    .map(String::as_str)
                    .filter(|n| *n != self.raw.default_upstream)
                    .collect();
                let example = others.first().copied().unwrap_or("NAME");
                self.push(
                    path.key("extracted"),
                    format!(
                        "mode `{}` needs `extracted`, the upstream of the new service",
                        route.mode
                    ),
                    format!("add extracted = \"{example}\""),
                );
            }
            None => {}
        }
        if route.mode == RouteMode::Canary && route.canary.is_none() {
            self.push(
                path.key("canary"),
                "mode `canary` needs a `canary` table",
                "add canary = { percent = 10 }",
            );
        }
        if let Some(shadow) = &route.shadow {
            let key = path.key("shadow");
            if !(0.0..=1.0).contains(&shadow.sample) {
                self.push(
                    key.key("sample"),
                    format!("sample {} is out of range", shadow.sample),
                    "use a share from 0.0 to 1.0, e.g. sample = 0.1",
                );
            }
            if let Some(max) = shadow.max_body {
                self.positive_size(&key.key("max_body"), max);
            }
            if !(0.0..=1.0).contains(&shadow.baseline) {
                self.push(
                    key.key("baseline"),
                    format!("baseline {} is out of range", shadow.baseline),
                    "use a share from 0.0 to 1.0, e.g. baseline = 0.05",
                );
            }
            for (field, value) in [("queue", shadow.queue), ("concurrency", shadow.concurrency)] {
                if value == 0 {
                    self.push(
                        key.key(field),
                        format!("{field} must be at least 1"),
                        format!("e.g. {field} = 32"),
                    );
                }
            }
            if shadow.timeout.is_zero() {
                self.push(
                    key.key("timeout"),
                    "timeout must be longer than 0",
                    "e.g. timeout = \"5s\"",
                );
            }
            for (i, name) in shadow.remove_headers.iter().enumerate() {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    self.push(
                        key.key("remove_headers").index(i),
                        format!("`{name}` is not a header name"),
                        "use a header name such as authorization",
                    );
                }
            }
            for (name, value) in &shadow.set_headers {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || http::HeaderValue::from_str(value).is_err()
                {
                    self.push(
                        key.key("set_headers").key(name),
                        format!("`{name}: {value}` is not a valid header"),
                        "use a header name and a printable value",
                    );
                }
            }
        }
        if let Some(canary) = &route.canary {
            self.canary(&path.key("canary"), canary);
        }
        if let Some(promote) = &route.promote {
            self.promote(&path.key("promote"), promote);
            if promote.auto && route.extracted.is_none() {
                self.push(
                    path.key("promote").key("auto"),
                    "an automatic rollout needs an `extracted` upstream to move to",
                    "add extracted = \"NAME\" or set auto = false",
                );
            }
        }
        if let Some(rollback) = &route.rollback {
            let key = path.key("rollback");
            self.share(
                &key.key("max_regression_rate"),
                rollback.max_regression_rate,
            );
            self.share(
                &key.key("max_error_rate_delta"),
                rollback.max_error_rate_delta,
            );
        }
        if let Some(max) = route.max_request_body {
            self.positive_size(&path.key("max_request_body"), max);
        }
        if let Some(diff) = &route.diff {
            self.diff(&path.key("diff"), diff);
        }
        self.matcher(&path.key("match"), &route.matcher);
        self.route_events(path, route);
    }

    fn promote(&mut self, path: &KeyPath, promote: &PromoteConfig) {
        self.share(
            &path.key("max_regression_rate"),
            promote.max_regression_rate,
        );
        self.share(
            &path.key("max_error_rate_delta"),
            promote.max_error_rate_delta,
        );
        if promote.max_p99_ratio <= 0.0 || !promote.max_p99_ratio.is_finite() {
            self.push(
                path.key("max_p99_ratio"),
                format!(
                    "max_p99_ratio {} must be a positive number",
                    promote.max_p99_ratio
                ),
                "e.g. max_p99_ratio = 1.2 (candidate p99 at most 1.2 × legacy's)",
            );
        }
        self.positive_duration(&path.key("window"), promote.window);
        let steps = &promote.steps;
        let increasing = steps.windows(2).all(|w| w[0] < w[1]);
        let in_range = steps.iter().all(|p| *p > 0.0 && *p <= 100.0);
        if steps.is_empty() || !increasing || !in_range {
            self.push(
                path.key("steps"),
                format!("steps {steps:?} must be increasing canary percentages in (0, 100]"),
                "e.g. steps = [1, 5, 25, 100]",
            );
        }
    }

    /// A rate from 0.0 to 1.0.
    fn share(&mut self, key: &KeyPath, value: f64) {
        if !(0.0..=1.0).contains(&value) {
            self.push(
                key,
                format!("{value} is not a share"),
                "use a number from 0.0 to 1.0, e.g. 0.005 for 0.5 %",
            );
        }
    }

    fn canary(&mut self, path: &KeyPath, canary: &CanaryConfig) {
        if !(0.0..=100.0).contains(&canary.percent) {
            self.push(
                path.key("percent"),
                format!("percent {} is out of range", canary.percent),
                "use 0 to 100, e.g. canary = { percent = 10 }",
            );
        }
        let valid = match canary.key.split_once(':') {
            None => matches!(canary.key.as_str(), "ip" | "request_id"),
            Some(("header", name)) => http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
            Some(("cookie", name)) => is_token(name),
            Some(_) => false,
        };
        if !valid {
            self.push(
                path.key("key"),
                format!("invalid canary key \"{}\"", canary.key),
                "use ip, request_id, header:NAME or cookie:NAME with a valid name, e.g. cookie:session",
            );
        }
    }

    fn matcher(&mut self, path: &KeyPath, matcher: &MatchConfig) {
        for problem in path_problems(&matcher.path) {
            self.push(path.key("path"), problem.0, problem.1);
        }
        let mut seen = HashSet::new();
        for (i, method) in matcher.methods.iter().enumerate() {
            let key = path.key("methods").index(i);
            if !is_token(method) {
                self.push(
                    &key,
                    format!("\"{method}\" is not an HTTP method"),
                    "use e.g. GET, POST, PUT, DELETE",
                );
            } else if method.bytes().any(|b| b.is_ascii_lowercase()) {
                self.push(
                    &key,
                    format!("method \"{method}\" must be upper-case"),
                    format!("write \"{}\"", method.to_ascii_uppercase()),
                );
            } else if !seen.insert(method.as_str()) {
                self.push(
                    &key,
                    format!("method {method} is listed twice"),
                    "remove the duplicate",
                );
            }
        }
        if let Some(host) = &matcher.host {
            if let Some((message, hint)) = host_problem(host) {
                self.push(path.key("host"), message, hint);
            }
        }
        for (name, value) in &matcher.headers {
            let key = path.key("headers").key(name);
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.push(
                    &key,
                    format!("\"{name}\" is not a valid header name"),
                    "use letters, digits and `-`, e.g. X-Tenant",
                );
            } else if http::HeaderValue::from_str(value).is_err() {
                self.push(
                    &key,
                    format!("\"{value}\" is not a valid header value"),
                    "use visible ASCII characters only",
                );
            }
        }
    }
}

/// An RFC 9110 token (method names, cookie names).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Problems of a `match.path`: exact `/a/b`, prefix `/a/*`, template `/a/{id}/b`.
pub(crate) fn path_problems(path: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |m: String, h: &str| out.push((m, h.to_owned()));
    if !path.starts_with('/') {
        add(
            format!("path \"{path}\" must start with `/`"),
            "e.g. path = \"/misc/thumbnail\"",
        );
        return out;
    }
    if let Some(c) = path.chars().find(|c| matches!(c, '?' | '#')) {
        add(
            format!("path \"{path}\" contains `{c}`"),
            "match the path only; queries and fragments are not matched",
        );
        return out;
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        add(
            format!("path \"{path}\" contains {c:?}"),
            "percent-encode it, e.g. %20 for a space",
        );
        return out;
    }
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut params = HashSet::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if segment.is_empty() && !last {
            add(
                format!("path \"{path}\" has an empty segment (`//`)"),
                "remove the extra `/`",
            );
        } else if segment.contains('*') {
            if *segment != "*" || !last {
                add(
                    format!("`*` in \"{path}\" must be the whole last segment"),
                    "write a prefix as \"/misc/*\"",
                );
            }
        } else if segment.contains(['{', '}']) {
            let name = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
            match name {
                Some("") => add(
                    format!("empty parameter `{{}}` in \"{path}\""),
                    "name it, e.g. {id}",
                ),
                Some(name) if is_identifier(name) => {
                    if !params.insert(name) {
                        add(
                            format!("parameter `{{{name}}}` appears twice in \"{path}\""),
                            "give each parameter its own name",
                        );
                    }
                }
                Some(name) => add(
                    format!("parameter name `{name}` in \"{path}\" is not an identifier"),
                    "use letters, digits and `_`, starting with a letter, e.g. {product_id}",
                ),
                None => add(
                    format!(
                        "segment `{segment}` of \"{path}\" must be a whole `{{name}}` parameter"
                    ),
                    "a parameter takes a whole segment, e.g. /api/products/{id}",
                ),
            }
        }
    }
    out
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Problems of `match.host`: a host name or IP address, without port.
fn host_problem(host: &str) -> Option<(String, String)> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if let Some((name, port)) = host.rsplit_once(':') {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Some((
                format!("host \"{host}\" includes a port"),
                format!(
                    "write host = \"{}\"; the port is not matched",
                    name.trim_matches(['[', ']'])
                ),
            ));
        }
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (!valid).then(|| {
        (
            format!("\"{host}\" is not a valid host name"),
            "write a name such as \"shop.example.com\" or an IP address".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates() {
        for ok in [
            "/",
            "/misc/thumbnail",
            "/misc/*",
            "/api/products/{id}",
            "/a/{id}/b/*",
            "/a/",
            "/a%20b",
        ] {
            assert!(
                path_problems(ok).is_empty(),
                "{ok}: {:?}",
                path_problems(ok)
            );
        }
        for bad in [
            "misc", "/a?b", "/a#b", "/a b", "/a//b", "/a*", "/*/b", "/a/{}", "/a/{1x}", "/{a}/{a}",
            "/a{b}", "/a/{b",
        ] {
            assert!(!path_problems(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        for ok in [
            "shop.example.com",
            "localhost",
            "10.0.0.1",
            "::1",
            "example.com.",
        ] {
            assert!(host_problem(ok).is_none(), "{ok}");
        }
        for bad in [
            "shop.example.com:8080",
            "",
            "-a.com",
            "a..b",
            "a_b.com",
            "*.example.com",
        ] {
            assert!(host_problem(bad).is_some(), "{bad}");
        }
    }
}
