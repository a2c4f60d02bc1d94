//! The shop's page layout (header, nav, footer) and the helpers every page uses: HTML
//! escaping and money formatting — the monolith's templates, reproduced so the pages are
//! byte for byte the same. All text that came from users or the API goes through [`escape`].

use std::fmt::Write;

use axum::http::StatusCode;

const STYLE: &str = "body{font-family:Georgia,serif;margin:0;color:#222;background:#faf8f4}\
header.site{background:#5a1e1e;color:#fff;padding:.8em 1.5em;display:flex;gap:2em;align-items:center}\
header.site a{color:#fff;text-decoration:none}header.site .brand{font-size:1.4em;font-weight:bold}\
nav a{margin-right:1em}main{padding:1.5em;max-width:60em;margin:auto}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left}\
.price{font-weight:bold}.stock-out{color:#a00}form.inline{display:inline}\
footer.site{border-top:1px solid #ccc;padding:1em 1.5em;font-size:.85em;color:#666}\
.notice{background:#fff3cd;border:1px solid #e0c36a;padding:.8em}";

/// Escape text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A price for people: `$49.99` for dollars, `EUR 12.00` for anything else.
pub(crate) fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (units, minor) = (cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
    if currency == "USD" {
        format!("{sign}${units}.{minor:02}")
    } else {
        format!("{sign}{} {units}.{minor:02}", escape(currency))
    }
}

/// A whole page: `title` is plain text (escaped here), `body` is already-safe HTML.
/// `rendered_at` shows in the footer, as legacy pages often do.
pub(crate) fn page(title: &str, body: &str, rendered_at: Option<&str>) -> String {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Legacy Shop</title>\n\
         <link rel=\"alternate\" type=\"application/rss+xml\" title=\"Legacy Shop\" href=\"/misc/feed.rss\">\n\
         <link rel=\"alternate\" type=\"application/atom+xml\" title=\"Legacy Shop\" href=\"/misc/feed.atom\">\n\
         <style>{STYLE}</style>\n</head>\n<body>\n\
         <header class=\"site\">\n<a class=\"brand\" href=\"/\">Legacy Shop</a>\n<nav>\n\
         <a href=\"/\">Home</a>\n<a href=\"/products\">Products</a>\n<a href=\"/cart\">Cart</a>\n\
         <a href=\"/upload\">Upload a picture</a>\n</nav>\n\
         <form class=\"search\" action=\"/products\" method=\"get\">\
         <input type=\"search\" name=\"q\" placeholder=\"Search products\" aria-label=\"Search products\">\
         <button type=\"submit\">Search</button></form>\n</header>\n\
         <main>\n{body}</main>\n\
         <footer class=\"site\">\n<p>&copy; 2026 Legacy Shop &middot; \
         <a href=\"/misc/feed.rss\">RSS</a> &middot; <a href=\"/misc/feed.atom\">Atom</a> &middot; \
         <a href=\"/misc/export.csv\">Export (CSV)</a> &middot; <a href=\"/misc/health\">Status</a></p>\n",
        title = escape(title),
    );
    if let Some(at) = rendered_at {
        let _ = writeln!(
            html,
            "<p class=\"rendered\">Page rendered at {}</p>",
            escape(at)
        );
    }
    html.push_str("</footer>\n</body>\n</html>\n");
    html
}

/// The page shown for an error status.
pub(crate) fn error_page(status: StatusCode, message: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<h1>{code} {reason}</h1>\n<p class=\"notice\">{message}</p>\n\
         <p><a href=\"/\">Back to the shop</a> or <a href=\"/products\">browse all products</a>.</p>\n",
        code = status.as_u16(),
        message = escape(message),
    );
    page(reason, &body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_formats_and_wraps() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(money(4999, "USD"), "$49.99");
        assert_eq!(money(-5, "USD"), "-$0.05");
        assert_eq!(money(1200, "EUR"), "EUR 12.00");
        let html = error_page(StatusCode::NOT_FOUND, "no <script>");
        assert!(html.contains("404 Not Found") && html.contains("no &lt;script&gt;"));
    }
}
