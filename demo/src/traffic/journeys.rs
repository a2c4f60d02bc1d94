//! The visitors' journeys through the shop, each request counted in a [`Tally`].

use std::io::Cursor;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

use super::Tally;

/// The seed catalogue's SKUs (legacy-shim's seed data).
const SKUS: &[&str] = &[
    "RED-CHAIR",
    "BLUE-LAMP",
    "GREEN-SOFA",
    "OAK-TABLE",
    "BRASS-CLOCK",
];
/// How long one request may take before it counts as unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status and body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A string field of a JSON body.
    fn field(&self, name: &str) -> Option<String> {
        Some(self.json()?.get(name)?.as_str()?.to_owned())
    }
}

/// A client of the shop behind the proxy. Redirects are not followed (a 303 is counted as
/// such) and cookies are handled by hand, per visitor.
pub struct Shop {
    client: Client,
    /// The proxy's base URL, without a trailing `/`.
    base: String,
}

impl Shop {
    /// A client for the shop at `base`.
    pub fn new(base: &str) -> anyhow::Result<Shop> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .user_agent("strangler-demo-traffic")
            .build()
            .context("cannot build the traffic driver's HTTP client")?;
        Ok(Shop {
            client,
            base: base.to_owned(),
        })
    }

    /// A visitor looking around: pages, product JSON, misc endpoints, a page that is not there.
    pub async fn browse(&self, round: u32, tally: &mut Tally) {
        let sku = pick(SKUS, round);
        for path in [
            "/".to_owned(),
            "/products".to_owned(),
            "/products?q=lamp".to_owned(),
            format!("/products/{sku}"),
            "/api/products".to_owned(),
            format!("/api/products/{sku}"),
            "/api/products/NO-SUCH-SKU".to_owned(),
            "/api/batches".to_owned(),
            "/misc/health".to_owned(),
            "/misc/feed.rss".to_owned(),
            "/upload".to_owned(),
        ] {
            self.send(self.get(&path), tally).await;
        }
    }

    /// Price conversions; one amount per round is an exact half cent (`N.125`), which the
    /// misc service's first version rounds half-to-even (N.12) and the monolith away from
    /// zero (N.13).
    pub async fn convert_prices(&self, round: u32, tally: &mut Tally) {
        let cents = round * 37 % 100;
        let conversions = [
            ("USD", "EUR", format!("{round}.{cents:02}")),
            ("EUR", "GBP", format!("{}.99", round * 3)),
            ("GBP", "JPY", "12.34".to_owned()),
            (
                pick(&["CHF", "CAD", "AUD", "SEK"], round),
                "USD",
                "100".to_owned(),
            ),
            ("USD", "USD", format!("{round}.125")),
            ("USD", "EUR", "1".to_owned()),
        ];
        for (from, to, amount) in conversions {
            let path = format!("/misc/currency?from={from}&to={to}&amount={amount}");
            self.send(self.get(&path), tally).await;
        }
        self.send(self.get("/misc/currency?from=USD&to=XXX&amount=1"), tally)
            .await;
    }

    /// A visitor fills a cart through the pages (the `session` cookie the monolith sets),
    /// places the order with the checkout form (`POST /cart/checkout` → 303 to `/orders/{id}`),
    /// and looks at the order page (returning the order's id); every other round a second
    /// visitor uses the cart API alone.
    pub async fn cart_and_checkout(&self, round: u32, tally: &mut Tally) -> Option<String> {
        let first = self.send(self.get("/cart"), tally).await?;
        let cookie = session_cookie(&first.headers)?;
        let form = [("sku", pick(SKUS, round + 1)), ("quantity", "1")];
        let add = self.post("/cart/add").header(COOKIE, &cookie).form(&form);
        self.send(add, tally).await;
        self.send(self.get("/cart").header(COOKIE, &cookie), tally)
            .await;
        let checkout = self.post("/cart/checkout").header(COOKIE, &cookie);
        let order = self
            .send(checkout, tally)
            .await
            .and_then(|placed| order_of(&placed.headers));
        if let Some(id) = &order {
            self.send(self.get(&format!("/orders/{id}")), tally).await;
        }
        if round % 2 == 0 {
            let cart = self.post("/api/carts").json(&json!({}));
            if let Some(cart) = self.send(cart, tally).await
                && let Some(session) = cart.field("session")
            {
                let line = json!({"sku": pick(SKUS, round + 2), "quantity": 2});
                let add = self.post(&format!("/api/carts/{session}")).json(&line);
                self.send(add, tally).await;
                self.send(self.get(&format!("/api/carts/{session}")), tally)
                    .await;
            }
        }
        order
    }

    /// An order placed through the JSON API (its id returned); every fifth round a restock of
    /// every SKU the visitors buy (`PUT /api/products/{sku}`), so repeated runs never sell out.
    pub async fn order_through_api(&self, round: u32, tally: &mut Tally) -> Option<String> {
        let sku = pick(SKUS, round + 3);
        if round % 5 == 1 {
            for restocked in SKUS {
                let restock = self
                    .put(&format!("/api/products/{restocked}"))
                    .json(&json!({"stock": 500}));
                self.send(restock, tally).await;
            }
        }
        let order = self
            .post("/api/orders")
            .json(&json!({"sku": sku, "quantity": 1}));
        self.send(order, tally).await?.field("id")
    }

    /// Reads orders back through the API, and the order list. Called a round after they were
    /// placed: the API service learns of them from the bus a moment later (eventual
    /// consistency), and a read made before that would be a shadow regression.
    pub async fn read_back(&self, orders: &[String], tally: &mut Tally) {
        for id in orders {
            self.send(self.get(&format!("/api/orders/{id}")), tally)
                .await;
        }
        self.send(self.get("/api/orders"), tally).await;
    }

    /// Uploads a small generated PNG (raw `image/png` body); returns its image id.
    pub async fn upload_picture(&self, round: u32, tally: &mut Tally) -> Option<String> {
        let png = match picture(round) {
            Ok(png) => png,
            Err(e) => {
                eprintln!("cannot generate a picture to upload: {e}");
                return None;
            }
        };
        let upload = self
            .post("/images")
            .header(CONTENT_TYPE, "image/png")
            .body(png);
        self.send(upload, tally).await?.field("id")
    }

    /// Thumbnails of an uploaded picture (which the thumbnail worker rendered ahead of time
    /// for the misc service) and of a seed picture.
    pub async fn thumbnail(&self, image: &str, tally: &mut Tally) {
        for path in [
            format!("/misc/thumbnail?image={image}&w=64&h=64"),
            "/misc/thumbnail?image=img-1".to_owned(),
        ] {
            self.send(self.get(&path), tally).await;
        }
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    fn put(&self, path: &str) -> RequestBuilder {
        self.client.put(format!("{}{path}", self.base))
    }

    /// Sends one request and reads its whole answer, counting it; `None` without an answer.
    async fn send(&self, request: RequestBuilder, tally: &mut Tally) -> Option<Answer> {
        let answer = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        match answer {
            Ok(answer) => {
                tally.answered(answer.status);
                Some(answer)
            }
            Err(e) => {
                tally.failed();
                eprintln!("  no answer: {e}");
                None
            }
        }
    }
}

/// The `session=…` pair of a `Set-Cookie` answer.
fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with("session="))
        .map(str::to_owned)
}

/// The order id of a checkout's `Location: /orders/{id}`.
fn order_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let id = location.strip_prefix("/orders/")?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// One of `items`, chosen by round.
fn pick<'a>(items: &[&'a str], round: u32) -> &'a str {
    let index = usize::try_from(round).unwrap_or(0) % items.len();
    items[index]
}

/// A small PNG whose colours depend on the round, so each upload is a different picture.
fn picture(round: u32) -> Result<Vec<u8>, image::ImageError> {
    let shade = u8::try_from(round % 256).unwrap_or(0);
    let picture = image::RgbImage::from_fn(48, 32, |x, y| {
        let x = u8::try_from(x).unwrap_or(0);
        let y = u8::try_from(y).unwrap_or(0);
        image::Rgb([x.wrapping_mul(5), y.wrapping_mul(7), shade.wrapping_mul(13)])
    });
    let mut png = Cursor::new(Vec::new());
    picture.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{LOCATION, order_of, picture, session_cookie};

    #[test]
    fn pictures_are_pngs_that_differ_by_round() {
        let one = picture(1).unwrap();
        let two = picture(2).unwrap();
        assert!(one.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_ne!(one, two);
    }

    #[test]
    fn the_order_id_is_taken_from_the_checkout_redirect() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(order_of(&headers), None);
        headers.insert(LOCATION, "/orders/ord-12".parse().unwrap());
        assert_eq!(order_of(&headers).as_deref(), Some("ord-12"));
        headers.insert(LOCATION, "/cart".parse().unwrap());
        assert_eq!(order_of(&headers), None);
    }

    #[test]
    fn the_session_pair_is_taken_from_set_cookie() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("set-cookie", "other=1".parse().unwrap());
        headers.append(
            "set-cookie",
            "session=abc; Path=/; HttpOnly".parse().unwrap(),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("session=abc"));
    }
}
