//! The table: every kind of request the shop answers, in the order they are sent. Writes
//! come in a fixed order, so twin shops hand out the same ids; later cases read what earlier
//! ones got (an ETag, a `Location`, a session cookie) from the side's own history.

use std::io::Cursor;

use serde_json::json;
use system_tests::exchange::Req;

use super::{Case, History, case};

/// Every case, in sending order.
pub fn all() -> Vec<Case> {
    [
        pages(),
        api(),
        misc(),
        conditional_and_gzip(),
        cart(),
        images(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn pages() -> Vec<Case> {
    vec![
        case("home page", 200, |_| Req::get("/")),
        case("product list page", 200, |_| Req::get("/products")),
        case("product page (routed)", 200, |_| {
            Req::get("/products/RED-CHAIR")
        }),
        case("product page, HEAD", 200, |_| {
            Req::head("/products/STEEL-STOOL")
        }),
        case("product page, percent-encoded path", 200, |_| {
            Req::get("/products/RED%2DCHAIR")
        }),
        case("product page, unknown sku (404 page)", 404, |_| {
            Req::get("/products/NO-SUCH")
        }),
        case("unknown path (404 page)", 404, |_| {
            Req::get("/no/such/page?x=1")
        }),
        case("upload form page", 200, |_| Req::get("/upload")),
        case("search, percent-encoded", 200, |_| {
            Req::get("/products?q=bl%75e%20lamp")
        }),
        case("search, percent-encoded UTF-8", 200, |_| {
            Req::get("/products?q=Caf%C3%A9%20%E2%80%94%20%22mug%22%20%26%20%3Ctea%3E")
        }),
        case("search, raw UTF-8 bytes in the target", 200, |_| {
            Req::get("/products?q=café—ü".as_bytes())
        })
        .h1_only(),
        case("search, 6 kB query string", 200, |_| {
            Req::get(format!("/products?q={}&pad=1", "lamp%20".repeat(1000)))
        }),
        case("absolute-form target", 200, |_| {
            Req::get("http://shop.example/products/OAK-TABLE")
        })
        .h1_only(),
        case("dot segments, not normalised (404)", 404, |_| {
            Req::get("/misc/../products/RED-CHAIR")
        }),
        case("trailing slash (404 page)", 404, |_| Req::get("/products/")),
        case("unknown method (405 page)", 405, |_| {
            Req::new("PROPFIND", "/products")
        }),
        case("OPTIONS * (asterisk form, 404 page)", 404, |_| {
            Req::options("*")
        })
        .h1_only(),
    ]
}

fn api() -> Vec<Case> {
    vec![
        case("api product list", 200, |_| Req::get("/api/products")),
        case("api product list, HEAD", 200, |_| {
            Req::head("/api/products")
        }),
        case("api product", 200, |_| Req::get("/api/products/BLUE-LAMP")),
        case("api product update (PUT)", 200, |_| {
            Req::new("PUT", "/api/products/BLUE-LAMP")
                .json(&json!({"price_cents": 3100, "stock": 7}))
        }),
        case("api product update, unknown field (422)", 422, |_| {
            Req::new("PUT", "/api/products/BLUE-LAMP").json(&json!({"colour": "red"}))
        }),
        case("api product update, malformed JSON (400)", 400, |_| {
            Req::new("PUT", "/api/products/BLUE-LAMP").body("application/json", "{\"stock\": ")
        }),
        case("api product update, not JSON (415)", 415, |_| {
            Req::new("PUT", "/api/products/BLUE-LAMP").body("text/plain", "stock=1")
        }),
        case("api method not allowed (405)", 405, |_| {
            Req::delete("/api/products")
        }),
        case("api product, percent-encoded slash (404)", 404, |_| {
            Req::get("/api/products/RED%2FCHAIR")
        }),
        case("api order create (POST)", 201, |_| {
            Req::new("POST", "/api/orders").json(&json!({"sku": "GLASS-VASE", "quantity": 3}))
        }),
        case("api order", 200, |h| {
            Req::get(h.header("api order create (POST)", "location"))
        }),
        case("api order list", 200, |_| Req::get("/api/orders")),
        case("api order create, out of stock (409)", 409, |_| {
            Req::new("POST", "/api/orders").json(&json!({"sku": "COTTON-THROW", "quantity": 1}))
        }),
        case("api order delete (DELETE)", 204, |h| {
            Req::delete(h.header("api order create (POST)", "location"))
        }),
        case("api order delete again (404)", 404, |h| {
            Req::delete(h.header("api order create (POST)", "location"))
        }),
        case("api batch list", 200, |_| Req::get("/api/batches")),
        case("api batch create (POST)", 201, |_| {
            Req::new("POST", "/api/batches")
                .json(&json!({"reference": "batch-100", "sku": "GREEN-SOFA", "quantity": 10, "eta": "2026-02-01"}))
        }),
        case("api allocate (POST)", 201, |_| {
            Req::new("POST", "/api/allocate")
                .json(&json!({"orderid": "o-1", "sku": "GREEN-SOFA", "qty": 4}))
        }),
        case("api allocate, same line again", 200, |_| {
            Req::new("POST", "/api/allocate")
                .json(&json!({"orderid": "o-1", "sku": "GREEN-SOFA", "qty": 4}))
        }),
        case("api allocate, second line", 201, |_| {
            Req::new("POST", "/api/allocate")
                .json(&json!({"orderid": "o-2", "sku": "GREEN-SOFA", "qty": 5}))
        }),
        case("api batch quantity change (PATCH)", 200, |_| {
            Req::new("PATCH", "/api/batches/batch-100").json(&json!({"quantity": 6}))
        }),
        case("api batch", 200, |_| Req::get("/api/batches/batch-100")),
        case("api CORS preflight (OPTIONS)", 204, |_| {
            Req::options("/api/products/RED-CHAIR")
                .header("origin", "http://shop.example")
                .header("access-control-request-method", "PUT")
                .header(
                    "access-control-request-headers",
                    "content-type, x-request-id",
                )
        }),
        case("api cross-origin GET", 200, |_| {
            Req::get("/api/products").header("origin", "http://shop.example")
        })
        .expect_header("access-control-allow-origin", "http://shop.example"),
        case("api import, small body", 200, |_| {
            Req::new("POST", "/api/imports").body("text/csv", "sku,qty\r\nRED-CHAIR,1\r\n")
        }),
        case("api import, Expect: 100-continue", 200, |_| {
            Req::new("POST", "/api/imports")
                .header("expect", "100-continue")
                .body("text/csv", "x".repeat(3000))
        }),
        case("api import, chunked request body", 200, |_| {
            Req::new("POST", "/api/imports")
                .header("content-type", "text/csv")
                .header("transfer-encoding", "chunked")
                .raw_body("8\r\nsku,qty\n\r\n5;ext=1\r\nA,1\r\n\r\n0\r\n\r\n")
        })
        .h1_only(),
    ]
}

fn misc() -> Vec<Case> {
    vec![
        case("currency conversion", 200, |_| {
            Req::get("/misc/currency?from=USD&to=EUR&amount=12.34")
        }),
        case("currency conversion, percent-encoded amount", 200, |_| {
            Req::get("/misc/currency?from=GBP&to=JPY&amount=%2B1%2E5")
        }),
        case("currency conversion, unknown currency (400)", 400, |_| {
            Req::get("/misc/currency?from=USD&to=XXX&amount=1")
        }),
        case("health", 200, |_| Req::get("/misc/health")),
        case("health, HEAD", 200, |_| Req::head("/misc/health")),
        case("HTTP/1.0 request for a streamed answer", 200, |_| {
            Req::get("/misc/export.csv?rows=600").http10()
        })
        .h1_only(),
        case("HTTP/1.0 request for a sized answer", 200, |_| {
            Req::get("/misc/currency?from=CHF&to=AUD&amount=0.005").http10()
        })
        .h1_only(),
        case("CSV export, HEAD", 200, |_| {
            Req::head("/misc/export.csv?rows=5000")
        }),
        case("RSS feed", 200, |_| Req::get("/misc/feed.rss")),
        case("Atom feed", 200, |_| Req::get("/misc/feed.atom")),
        case("CSV export, chunked, many chunks", 200, |_| {
            Req::get("/misc/export.csv?rows=5000")
        })
        .expect_header("transfer-encoding", "chunked"),
        case("CSV export, gzip", 200, |_| {
            Req::get("/misc/export.csv?rows=3000").header("accept-encoding", "gzip")
        })
        .expect_header("content-encoding", "gzip"),
        case("download, 200 kB", 200, |_| {
            Req::get("/misc/download?bytes=200000")
        })
        .expect_header("content-length", "200000"),
        case("redirect (302)", 302, |_| Req::get("/misc/redirect"))
            .expect_header("location", "/misc/health"),
        case(
            "WebSocket endpoint without upgrade (JSON error)",
            400,
            |_| Req::get("/misc/ws"),
        ),
    ]
}

fn conditional_and_gzip() -> Vec<Case> {
    vec![
        case("product list page, gzip", 200, |_| {
            Req::get("/products").header("accept-encoding", "gzip")
        })
        .expect_header("content-encoding", "gzip"),
        case("product list page, identity", 200, |_| {
            Req::get("/products").header("accept-encoding", "identity")
        })
        .expect_header("vary", "Accept-Encoding"),
        case("product list page, If-None-Match (304)", 304, |h| {
            Req::get("/products").header(
                "if-none-match",
                h.header("product list page, identity", "etag"),
            )
        }),
        case("product list page, stale If-None-Match", 200, |_| {
            Req::get("/products").header("if-none-match", "\"stale\"")
        }),
        case("gzip page, weak If-None-Match (304)", 304, |h| {
            Req::get("/products")
                .header("accept-encoding", "gzip")
                .header("if-none-match", h.header("product list page, gzip", "etag"))
        }),
        case("seed image", 200, |_| Req::get("/images/img-1"))
            .expect_header("content-type", "image/png"),
        case("seed image, If-None-Match (304)", 304, |h| {
            Req::get("/images/img-1").header("if-none-match", h.header("seed image", "etag"))
        }),
    ]
}

fn cart() -> Vec<Case> {
    vec![
        case("cart, new session (Set-Cookie)", 200, |_| Req::get("/cart"))
            .expect_header_present("set-cookie"),
        case("cart add, form post (303)", 303, |h| {
            Req::new("POST", "/cart/add")
                .header("cookie", session(h))
                .form("sku=BLUE-LAMP&quantity=2")
        })
        .expect_header("location", "/cart"),
        case("cart add without a session (303 + Set-Cookie)", 303, |_| {
            Req::new("POST", "/cart/add").form("sku=RED-CHAIR")
        })
        .expect_header_present("set-cookie"),
        case("cart add, bad quantity (400 page)", 400, |h| {
            Req::new("POST", "/cart/add")
                .header("cookie", session(h))
                .form("sku=BLUE-LAMP&quantity=lots")
        }),
        case("cart with items", 200, |h| {
            Req::get("/cart").header("cookie", format!("theme=dark; {}", session(h)))
        }),
        case("cart, cookie in two fields", 200, |h| {
            Req::get("/cart")
                .header("cookie", "theme=dark")
                .header("cookie", session(h))
        }),
        case("checkout (303 to the order)", 303, |h| {
            Req::new("POST", "/cart/checkout")
                .header("cookie", session(h))
                .form("")
        }),
        case("order page", 200, |h| {
            Req::get(h.header("checkout (303 to the order)", "location"))
        }),
        case("checkout, empty cart (409 page)", 409, |h| {
            Req::new("POST", "/cart/checkout")
                .header("cookie", session(h))
                .form("")
        }),
    ]
}

fn images() -> Vec<Case> {
    vec![
        case("image upload, multipart (201)", 201, |_| {
            let boundary = "strangler-test-boundary";
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nA gradient\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"g.png\"\r\n\
                 Content-Type: image/png\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&png(40, 30));
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            Req::new("POST", "/images")
                .body(&format!("multipart/form-data; boundary={boundary}"), body)
        }),
        case("uploaded image", 200, |h| {
            Req::get(h.header("image upload, multipart (201)", "location"))
        }),
        case("thumbnail of the upload", 200, |h| {
            let location = h.header("image upload, multipart (201)", "location");
            let id = location.rsplit('/').next().unwrap_or_default();
            Req::get(format!("/misc/thumbnail?image={id}&w=16&h=16"))
        })
        .expect_header("content-type", "image/png"),
        case("thumbnail of a posted image", 200, |_| {
            Req::new("POST", "/misc/thumbnail?w=8").body("image/png", png(24, 24))
        }),
        case("image upload, not an image (415)", 415, |_| {
            Req::new("POST", "/images").body("text/plain", "hello")
        }),
    ]
}

/// `session=…` from the first cart visit's `Set-Cookie`.
fn session(h: &History) -> String {
    let cookie = h.header("cart, new session (Set-Cookie)", "set-cookie");
    cookie.split(';').next().unwrap_or_default().to_owned()
}

/// A `width`×`height` PNG gradient, the same bytes every time.
fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode a PNG");
    out.into_inner()
}
