//! The routes.toml of the migration: every route on legacy, the moving ones with a 50 %
//! canary by request id (so a canary step sends about half of the journeys to each side),
//! and the emit rules that turn the monolith's writes into the events the extracted services
//! consume — the page checkout's included, whose order id comes from its redirect.

use std::time::Duration;

use strangler::config::BusConfig;
use system_tests::routes_toml;

/// The admin token the flips are made with.
pub const TOKEN: &str = "migration-admin-token";
/// The longest wait for anything asynchronous (a reload, a consumer catching up).
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The misc routes, in the order they move.
pub const MISC: [&str; 3] = ["health", "currency", "misc"];
/// The JSON API routes that move to the API service (carts stay with the monolith: the API
/// service has none).
pub const API: [&str; 4] = ["api-products", "api-orders", "api-order", "api"];
/// The page routes that move to the UI front (the cart pages stay: the UI front keeps the
/// monolith's carts through `/api/carts`, which the journeys do not move).
pub const UI: [&str; 4] = [
    "pages-home",
    "pages-products",
    "pages-product",
    "pages-order",
];

/// Headers a client relies on; the rest (date, request id, length of masked bodies) is noise.
pub const HEADERS: [&str; 7] = [
    "content-type",
    "location",
    "cache-control",
    "content-disposition",
    "vary",
    "set-cookie",
    "access-control-allow-origin",
];

/// The routes.toml with the monolith at `legacy`, the extracted services at `misc`, `api` and
/// `ui`, publishing to the NATS `bus`, and an admin token in the file `admin-token`.
pub fn config(legacy: &str, misc: &str, api: &str, ui: &str, bus: &BusConfig) -> String {
    let url = bus.url.as_deref().unwrap();
    let (stream, prefix) = (&bus.stream, &bus.subject_prefix);
    routes_toml(
        legacy,
        &format!(
            r#"[upstreams.misc]
url = "{misc}"

[upstreams.api]
url = "{api}"

[upstreams.ui]
url = "{ui}"

[[routes]]
id = "health"
match = {{ path = "/misc/health", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "misc"
canary = {{ percent = 50, key = "request_id" }}
diff = {{ ignore = ["/body/uptime_seconds"] }}

[[routes]]
id = "currency"
match = {{ path = "/misc/currency", methods = ["GET"] }}
mode = "legacy"
extracted = "misc"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "misc"
match = {{ path = "/misc/*" }}
mode = "legacy"
extracted = "misc"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "api-products"
match = {{ path = "/api/products/{{sku}}", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "api-orders"
match = {{ path = "/api/orders" }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes.emit]]
type = "shop.order.placed"
when = {{ methods = ["POST"], status = [201] }}
data = {{ order_id = "response:/id", sku = "request:/sku", quantity = "request:/quantity", created_at = "response:/created_at", status = "response:/status", lines = "response:/lines" }}

[[routes]]
id = "api-order"
match = {{ path = "/api/orders/{{id}}" }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "api-carts"
match = {{ path = "/api/carts" }}
mode = "legacy"

[[routes]]
id = "api-cart-checkout"
match = {{ path = "/api/carts/{{session}}/checkout" }}
mode = "legacy"

[[routes.emit]]
type = "shop.order.placed"
when = {{ methods = ["POST"], status = [201] }}
data = {{ order_id = "response:/id", created_at = "response:/created_at", status = "response:/status", lines = "response:/lines" }}

[[routes]]
id = "api-cart"
match = {{ path = "/api/carts/*" }}
mode = "legacy"

[[routes]]
id = "api"
match = {{ path = "/api/*" }}
mode = "legacy"
extracted = "api"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "pages-home"
match = {{ path = "/", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "ui"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "pages-products"
match = {{ path = "/products", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "ui"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "pages-product"
match = {{ path = "/products/{{sku}}", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "ui"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "pages-order"
match = {{ path = "/orders/{{id}}", methods = ["GET", "HEAD"] }}
mode = "legacy"
extracted = "ui"
canary = {{ percent = 50, key = "request_id" }}

[[routes]]
id = "page-checkout"
match = {{ path = "/cart/checkout", methods = ["POST"] }}
mode = "legacy"

[[routes.emit]]
type = "shop.order.placed"
when = {{ methods = ["POST"], status = [303] }}
data = {{ order_id = "response_header:location:/orders/{{id}}" }}

[[routes]]
id = "images-upload"
match = {{ path = "/images", methods = ["POST"] }}
mode = "legacy"

[[routes.emit]]
type = "shop.image.uploaded"
when = {{ methods = ["POST"], status = [201] }}
data = {{ image_id = "response:/id", url = "response:/url", content_type = "response:/content_type" }}

[bus]
kind = "nats"
url = "{url}"
stream = "{stream}"
subject_prefix = "{prefix}"
"#
        ),
    )
    .replace(
        "[admin]\naddress = \"127.0.0.1:0\"\n",
        "[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"admin-token\"\n",
    )
}
