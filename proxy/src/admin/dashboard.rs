//! The dashboard: one page at `GET /` of the admin listener, with its script and style sheet,
//! built into the binary (machines running the proxy are often offline: no CDN, no fonts).
//!
//! The page is static; everything it shows comes from the admin API it polls every 2 s
//! (`/admin/routes`, `/admin/shadow`, `/admin/diffs`, and `/admin/events/*` when present), and
//! it flips routes through the same `PUT /admin/routes/{id}` and `POST /admin/kill` as any
//! client, with the bearer token the user types once (kept in the tab's sessionStorage).
//!
//! What it must never do: put data into the document as markup. Route ids, paths and diff
//! values come from traffic, so the script builds every node with `createElement` and
//! `textContent`; the Content-Security-Policy below (scripts and styles from this origin only,
//! no inline script) is the second fence, not the first.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page's HTML skeleton.
const INDEX_HTML: &str = include_str!("dashboard/index.html");
/// The script that polls the admin API and renders the page.
const APP_JS: &str = include_str!("dashboard/app.js");
/// The style sheet.
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// Only this origin's script and style; no inline script, no framing, no form posts.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the dashboard page.
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /dashboard/app.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /dashboard/style.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// A built-in file with headers that keep it from being sniffed, framed or cached stale (a
/// new binary may ship a new page on the same address).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_its_assets_and_has_no_inline_script() {
        assert!(INDEX_HTML.contains(r#"src="/dashboard/app.js""#));
        assert!(INDEX_HTML.contains(r#"href="/dashboard/style.css""#));
        assert!(
            !INDEX_HTML.contains("<script>") && !INDEX_HTML.contains("style=\""),
            "the CSP allows no inline script or style"
        );
    }

    #[test]
    fn script_never_parses_data_as_markup() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
    }
}
