//! Checks of the `[listen]` hardening limits: request heads, bodies and HTTP/2 streams.

use super::Checks;
use crate::config::diagnostic::KeyPath;
use crate::listen::MAX_HEADERS;

impl Checks<'_> {
    pub(super) fn listen_limits(&mut self, path: &KeyPath) {
        let listen = &self.raw.listen;
        self.positive_duration(&path.key("body_read_timeout"), listen.body_read_timeout);
        if listen.max_headers == 0 || listen.max_headers > MAX_HEADERS {
            self.push(
                path.key("max_headers"),
                format!("must be between 1 and {MAX_HEADERS}"),
                "e.g. max_headers = 100 (Envoy's default)",
            );
        }
        self.positive_size(&path.key("max_uri_bytes"), listen.max_uri_bytes);
        if listen.h2_max_concurrent_streams == 0 {
            self.push(
                path.key("h2_max_concurrent_streams"),
                "must be greater than 0",
                "e.g. h2_max_concurrent_streams = 100",
            );
        }
        if listen.h2_max_cancelled_streams == 0 {
            self.push(
                path.key("h2_max_cancelled_streams"),
                "must be greater than 0: every stream a client cancels would close its connection",
                "e.g. h2_max_cancelled_streams = 100",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::from_toml_str;

    fn errors(listen: &str) -> String {
        let text = format!(
            "default_upstream = \"legacy\"\n[listen]\n{listen}\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n"
        );
        match from_toml_str(&text, "routes.toml") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_pass() {
        assert_eq!(errors(""), "");
    }

    #[test]
    fn bad_limits_name_their_key() {
        assert!(errors("max_headers = 0").contains("listen.max_headers"));
        assert!(errors("max_headers = 100000").contains("listen.max_headers"));
        assert!(errors("body_read_timeout = \"0s\"").contains("listen.body_read_timeout"));
        assert!(errors("max_uri_bytes = 0").contains("listen.max_uri_bytes"));
        assert!(
            errors("h2_max_concurrent_streams = 0").contains("listen.h2_max_concurrent_streams")
        );
        assert!(errors("h2_max_cancelled_streams = 0").contains("listen.h2_max_cancelled_streams"));
    }
}
