//! Checks of `[cluster]`: a NATS URL, a bucket name JetStream accepts, and an instance name
//! that can stand in a KV key (later parts of the fleet key per-instance state by it).

use std::time::Duration;

use super::Checks;
use crate::config::diagnostic::KeyPath;

/// Shortest evidence window and lease TTL: below it the fleet spends its time on NATS.
const MIN_PERIOD: Duration = Duration::from_secs(1);
/// Longest: a dead leader or a silent instance would weigh on decisions for too long.
const MAX_PERIOD: Duration = Duration::from_secs(600);

/// Whether `name` is a valid JetStream KV bucket name (`[A-Za-z0-9_-]+`).
fn bucket_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

impl Checks<'_> {
    pub(super) fn cluster(&mut self) {
        let Some(cluster) = &self.raw.cluster else {
            return;
        };
        let path = KeyPath::default().key("cluster");
        match url::Url::parse(&cluster.url) {
            Ok(url) if url.scheme() == "nats" && url.host_str().is_some_and(|h| !h.is_empty()) => {}
            Ok(_) | Err(_) => self.push(
                path.key("url"),
                format!("\"{}\" is not a nats:// URL", cluster.url),
                "write e.g. url = \"nats://127.0.0.1:4222\"",
            ),
        }
        if !bucket_name_ok(&cluster.bucket) {
            self.push(
                path.key("bucket"),
                format!(
                    "\"{}\" is not a JetStream key-value bucket name",
                    cluster.bucket
                ),
                "use letters, digits, `-` and `_`, e.g. bucket = \"strangler\"",
            );
        }
        if let Some(instance) = &cluster.instance {
            let ok = !instance.is_empty()
                && instance
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
            if !ok {
                self.push(
                    path.key("instance"),
                    format!("\"{instance}\" is not an instance name"),
                    "use letters, digits, `-`, `_` and `:`, e.g. instance = \"edge-1\"; leave it out for host name + listen port",
                );
            }
        }
        for (key, value) in [
            ("evidence_window", cluster.evidence_window),
            ("lease_ttl", cluster.lease_ttl),
        ] {
            if !(MIN_PERIOD..=MAX_PERIOD).contains(&value) {
                self.push(
                    path.key(key),
                    format!("{value:?} is out of range"),
                    "use 1s to 10m; the default 10s suits most fleets",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ClusterKind, RouteMode, from_toml_str};

    const HEAD: &str =
        "default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n";

    fn errors(cluster: &str) -> Vec<String> {
        match from_toml_str(&format!("{HEAD}[cluster]\n{cluster}"), "t.toml") {
            Ok(_) => Vec::new(),
            Err(diags) => diags.0.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn off_by_default() {
        let config = from_toml_str(HEAD, "t.toml").expect("valid");
        assert_eq!(config.raw().cluster, None);
    }

    #[test]
    fn defaults_fill_url_and_bucket() {
        let config =
            from_toml_str(&format!("{HEAD}[cluster]\nkind = \"nats\"\n"), "t.toml").expect("valid");
        let cluster = config.raw().cluster.clone().expect("cluster");
        assert_eq!(cluster.kind, ClusterKind::Nats);
        assert_eq!(cluster.url, "nats://127.0.0.1:4222");
        assert_eq!(cluster.bucket, "strangler");
        assert_eq!(cluster.instance, None);
        assert_eq!(cluster.evidence_window, std::time::Duration::from_secs(10));
        assert_eq!(cluster.lease_ttl, std::time::Duration::from_secs(10));
    }

    #[test]
    fn windows_are_durations_in_range() {
        let config = from_toml_str(
            &format!(
                "{HEAD}[cluster]\nkind = \"nats\"\nevidence_window = \"2s\"\nlease_ttl = \"3s\"\n"
            ),
            "t.toml",
        )
        .expect("valid");
        let cluster = config.raw().cluster.clone().expect("cluster");
        assert_eq!(cluster.evidence_window, std::time::Duration::from_secs(2));
        assert_eq!(cluster.lease_ttl, std::time::Duration::from_secs(3));
        let errs = errors("kind = \"nats\"\nevidence_window = \"100ms\"\nlease_ttl = \"1h\"\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("cluster.evidence_window"), "{errs:?}");
        assert!(errs[1].contains("cluster.lease_ttl"), "{errs:?}");
    }

    #[test]
    fn bad_values_are_reported_at_their_line() {
        let errs = errors(
            "kind = \"nats\"\nurl = \"redis://127.0.0.1:6379\"\nbucket = \"a.b\"\ninstance = \"edge 1\"\n",
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("cluster.url") && errs[0].contains("t.toml:6"),
            "{errs:?}"
        );
        assert!(
            errs[1].contains("cluster.bucket") && errs[1].contains("t.toml:7"),
            "{errs:?}"
        );
        assert!(
            errs[2].contains("cluster.instance") && errs[2].contains("t.toml:8"),
            "{errs:?}"
        );
    }

    #[test]
    fn kind_is_required_and_checked() {
        let errs = errors("bucket = \"b\"\n");
        assert!(errs.iter().any(|e| e.contains("kind")), "{errs:?}");
        let errs = errors("kind = \"etcd\"\n");
        assert!(
            errs.iter()
                .any(|e| e.contains("cluster.kind") && e.contains("nats")),
            "{errs:?}"
        );
        let errs = errors("kind = \"nats\"\nbuckett = \"b\"\n");
        assert!(errs.iter().any(|e| e.contains("bucket")), "{errs:?}");
    }

    #[test]
    fn fleet_modes_replace_the_files_and_are_checked_again() {
        let text = format!(
            "{HEAD}[upstreams.misc]\nurl = \"http://127.0.0.1:2\"\n\n[[routes]]\nid = \"a\"\nmatch = {{ path = \"/a\" }}\nmode = \"shadow\"\nextracted = \"misc\"\n\n[[routes]]\nid = \"b\"\nmatch = {{ path = \"/b\" }}\nmode = \"legacy\"\n"
        );
        let config = from_toml_str(&text, "t.toml").expect("valid");
        let modes = [("a".to_owned(), (RouteMode::Canary, Some(7.0)))].into();
        let overlaid = config.clone().with_modes(&modes).expect("still valid");
        let a = &overlaid.raw().routes[0];
        assert_eq!(a.mode, RouteMode::Canary);
        assert_eq!(
            a.canary.as_ref().map(|c| (c.percent, c.key.as_str())),
            Some((7.0, "ip"))
        );
        assert_eq!(
            overlaid.raw().routes[1].mode,
            RouteMode::Legacy,
            "untouched"
        );
        // A mode whose needs the file does not meet is refused, with the route's line.
        let modes = [("b".to_owned(), (RouteMode::Shadow, None))].into();
        let err = config.with_modes(&modes).unwrap_err().to_string();
        assert!(
            err.contains("routes[1]") && err.contains("extracted"),
            "{err}"
        );
    }
}
