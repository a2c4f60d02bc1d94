//! `GET /misc/feed.rss` (RSS 2.0) and `GET /misc/feed.atom` (Atom 1.0): the catalogue and
//! the ten most recent orders, byte for byte as the monolith renders them.
//!
//! The entries come from the service's catalogue: the monolith's seed, with the orders and
//! product edits its events reported applied (`crate::worker::orders`), so the feeds match
//! once the events of the monolith's writes are in.
//! Links are absolute, built from `X-Forwarded-Proto`/`-Host` when a proxy sent them, else
//! from `Host`.

use std::fmt::Write;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::response::{IntoResponse, Response};

use super::Service;
use super::catalogue::{Records, money, xml_escape as xml};
use super::clock::{rfc2822, rfc3339};

/// How many recent orders a feed lists.
const RECENT_ORDERS: usize = 10;

/// `scheme://host` of the site, as the client addressed it.
fn base_url(headers: &HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let scheme = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    let host = header("x-forwarded-host")
        .or_else(|| header(HOST.as_str()))
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// One feed entry, whatever the format.
struct Entry {
    id: String,
    title: String,
    link: String,
    summary: String,
    category: &'static str,
    /// When the entry last changed.
    updated: time::OffsetDateTime,
}

/// The products, then the newest orders, as entries linking under `base`.
fn entries(base: &str, catalogue: &Records) -> Vec<Entry> {
    let products = catalogue.products().iter().map(|p| Entry {
        id: format!("urn:legacy-shop:product:{}", p.sku),
        title: format!("{} — {}", p.name, money(p.price_cents, p.currency)),
        link: format!("{base}/products/{}", p.sku),
        summary: p.description.clone(),
        category: "product",
        updated: p.updated_at,
    });
    let orders = catalogue.recent_orders(RECENT_ORDERS).map(|o| {
        let items: Vec<String> = o
            .lines
            .iter()
            .map(|l| format!("{} × {}", l.quantity, l.name))
            .collect();
        Entry {
            id: format!("urn:legacy-shop:order:{}", o.id),
            title: format!("Order {}", o.id),
            link: format!("{base}/orders/{}", o.id),
            summary: format!(
                "{} — {}",
                items.join(", "),
                money(o.total_cents, o.currency)
            ),
            category: "order",
            updated: o.created_at,
        }
    });
    products.chain(orders).collect()
}

/// `GET /misc/feed.rss` → `application/rss+xml`.
pub(crate) async fn rss(State(service): State<Service>, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let built = rfc2822(service.clock().now());
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n\
         <title>Legacy Shop</title>\n<link>{base}/</link>\n\
         <description>Products and recent orders at the Legacy Shop</description>\n\
         <language>en-us</language>\n<lastBuildDate>{built}</lastBuildDate>\n\
         <atom:link href=\"{base}/misc/feed.rss\" rel=\"self\" type=\"application/rss+xml\"/>\n",
        base = xml(&base),
    );
    let entries = entries(&base, &service.catalogue().read());
    for entry in entries {
        let _ = writeln!(
            out,
            "<item><title>{title}</title><link>{link}</link>\
             <guid isPermaLink=\"false\">{id}</guid><description>{summary}</description>\
             <category>{category}</category><pubDate>{date}</pubDate></item>",
            title = xml(&entry.title),
            link = xml(&entry.link),
            id = xml(&entry.id),
            summary = xml(&entry.summary),
            category = entry.category,
            date = rfc2822(entry.updated),
        );
    }
    out.push_str("</channel>\n</rss>\n");
    ([(CONTENT_TYPE, "application/rss+xml; charset=utf-8")], out).into_response()
}

/// `GET /misc/feed.atom` → `application/atom+xml`.
pub(crate) async fn atom(State(service): State<Service>, headers: HeaderMap) -> Response {
    let raw_base = base_url(&headers);
    let base = xml(&raw_base);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>Legacy Shop</title>\n<id>urn:legacy-shop:feed</id>\n<updated>{updated}</updated>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"{base}/misc/feed.atom\"/>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"{base}/\"/>\n\
         <author><name>Legacy Shop</name></author>\n",
        updated = service.clock().timestamp(),
    );
    let entries = entries(&raw_base, &service.catalogue().read());
    for entry in entries {
        let _ = writeln!(
            out,
            "<entry><title>{title}</title><id>{id}</id><updated>{updated}</updated>\
             <link rel=\"alternate\" href=\"{link}\"/><summary>{summary}</summary>\
             <category term=\"{category}\"/></entry>",
            title = xml(&entry.title),
            id = xml(&entry.id),
            updated = xml(&rfc3339(entry.updated)),
            link = xml(&entry.link),
            summary = xml(&entry.summary),
            category = entry.category,
        );
    }
    out.push_str("</feed>\n");
    ([(CONTENT_TYPE, "application/atom+xml; charset=utf-8")], out).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::misc::test_support::{call, get, router};

    #[tokio::test]
    async fn rss_lists_products_and_orders() {
        let app = router();
        let req = Request::get("/misc/feed.rss")
            .header("host", "shop.example:8081")
            .body(Body::empty())
            .unwrap();
        let reply = call(&app, req).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header("content-type"),
            "application/rss+xml; charset=utf-8"
        );
        let text = reply.text();
        assert!(text.contains("<link>http://shop.example:8081/products/RED-CHAIR</link>"));
        assert!(text.contains("<title>Order ord-000002</title>"));
        assert!(text.contains("2 × Red Chair, 1 × Pine Shelf — $124.97"));
        assert!(text.contains("<pubDate>Thu, 01 Jan 2026 00:00:00 +0000</pubDate>"));
        assert!(text.contains("&quot;classic&quot; &lt;workshop&gt;"));
    }

    #[tokio::test]
    async fn atom_honours_forwarded_host() {
        let app = router();
        let req = Request::get("/misc/feed.atom")
            .header("host", "127.0.0.1:8081")
            .header("x-forwarded-host", "shop.example")
            .header("x-forwarded-proto", "https")
            .body(Body::empty())
            .unwrap();
        let text = call(&app, req).await.text();
        assert!(text.contains("href=\"https://shop.example/products/BLUE-LAMP\""));
        assert!(text.contains("<updated>2026-01-01T00:00:00Z</updated>"));
        assert!(
            get(&app, "/misc/feed.atom")
                .await
                .text()
                .contains("http://localhost/")
        );
    }
}
