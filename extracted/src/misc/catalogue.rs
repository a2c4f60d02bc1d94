//! The service's own data: a static seed of the monolith's catalogue.
//!
//! The misc service has no shop database. The feeds, the CSV export and the thumbnails of
//! stored pictures read the products, the orders and the pictures the monolith seeds its
//! database with, so this module carries the same seed: the same products, the same two
//! orders placed "before the shop opened", and the same generated gradient pictures. Their
//! timestamps are this service's start time (the stopped clock's instant when stable) and the
//! order ids follow the monolith's id rules, so a stable run matches a stable monolith.
//!
//! What the monolith learns after it starts comes from its events: the order consumer
//! (`crate::worker::orders`) applies placed and cancelled orders and product edits to the
//! live [`Catalogue`] through [`Catalogue::apply`], once per event id, so the feeds and the
//! export follow the monolith's writes. Uploaded pictures have their own store (`pictures`).

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use image::{DynamicImage, Rgb, RgbImage};
use serde::Deserialize;
use strangler::events::Event;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::clock::Clock;

/// (sku, name, description, price in cents, stock) — the monolith's seed catalogue.
#[rustfmt::skip]
const PRODUCTS: &[(&str, &str, &str, i64, i64)] = &[
    ("RED-CHAIR", "Red Chair", "A sturdy beech chair, lacquered a deep red.", 4999, 20),
    ("BLUE-LAMP", "Blue Lamp", "Desk lamp with a cobalt enamel shade.", 2950, 15),
    ("GREEN-SOFA", "Green Sofa", "Three seats of moss-green velvet.", 89900, 3),
    ("OAK-TABLE", "Oak Dining Table", "Solid oak, seats six; oiled finish.", 34900, 4),
    ("BRASS-CLOCK", "Brass Wall Clock", "Silent sweep movement in a brushed brass case.", 7450, 12),
    ("WOOL-RUG", "Wool Rug", "Hand-knotted, 160 × 230 cm, undyed wool.", 21900, 6),
    ("GLASS-VASE", "Glass Vase", "Mouth-blown smoked glass, 30 cm tall.", 3900, 25),
    ("PINE-SHELF", "Pine Shelf", "Wall shelf, 80 cm, with hidden brackets.", 2499, 40),
    ("LINEN-CURTAIN", "Linen Curtain", "Stone-washed linen panel, 140 × 250 cm.", 5900, 18),
    ("STEEL-STOOL", "Steel Stool", "Small & sturdy: the \"classic\" <workshop> stool.", 6500, 9),
    ("CERAMIC-MUG", "Ceramic Mug", "Glazed stoneware mug, 350 ml. Dishwasher safe.", 1200, 120),
    ("COTTON-THROW", "Cotton Throw", "Waffle-weave throw in oatmeal cotton.", 4500, 0),
];

/// The lines (sku, quantity) of the orders the monolith seeds, oldest first.
const SEED_ORDERS: &[&[(&str, i64)]] = &[
    &[("CERAMIC-MUG", 4)],
    &[("RED-CHAIR", 2), ("PINE-SHELF", 1)],
];

/// One of the monolith's generated seed pictures: a diagonal gradient.
struct SeedPicture {
    id: &'static str,
    width: u32,
    height: u32,
    /// Colour of the top-left corner.
    from: [u8; 3],
    /// Colour of the bottom-right corner.
    to: [u8; 3],
}

/// The monolith's seed pictures, by id.
#[rustfmt::skip]
const PICTURES: &[SeedPicture] = &[
    SeedPicture { id: "img-1", width: 64, height: 48, from: [200, 30, 40], to: [255, 200, 120] },
    SeedPicture { id: "img-2", width: 48, height: 64, from: [20, 40, 160], to: [150, 220, 255] },
    SeedPicture { id: "img-3", width: 96, height: 96, from: [20, 110, 40], to: [210, 240, 150] },
];

/// The currency every seed price is in.
const CURRENCY: &str = "USD";

/// A product as the feeds and the export show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Product {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) description: String,
    /// Price in cents.
    pub(crate) price_cents: i64,
    pub(crate) currency: &'static str,
    pub(crate) stock: i64,
    pub(crate) updated_at: OffsetDateTime,
}

/// An order with the lines it was bought with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) lines: Vec<OrderLine>,
    pub(crate) total_cents: i64,
    pub(crate) currency: &'static str,
}

/// One line of an order, with the name and price it was bought at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct OrderLine {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: i64,
    pub(crate) price_cents: i64,
}

/// The catalogue the service answers from, shared by the handlers and the order consumer.
/// Cheap to clone (an `Arc` inside); every clone sees the same data.
#[derive(Debug, Clone)]
pub struct Catalogue {
    inner: Arc<RwLock<Records>>,
}

/// Products (by SKU, as the monolith lists them), orders (oldest first) and the events
/// applied to them.
#[derive(Debug)]
pub(crate) struct Records {
    products: Vec<Product>,
    orders: Vec<Order>,
    /// Ids of the events applied (or refused), so a redelivery changes nothing.
    processed: HashSet<String>,
    /// Orders cancelled, so a placement arriving after its cancellation stays out.
    cancelled: HashSet<String>,
}

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The event changed the catalogue.
    Changed,
    /// Its fact was already here (or its order already cancelled): nothing changed.
    Unchanged,
    /// This event id was applied before: skipped.
    Duplicate,
    /// Its data cannot be applied (a field missing, an unknown product); the reason.
    Rejected(String),
    /// Not a type the catalogue follows.
    Ignored,
}

/// An order placed through the monolith (`POST /api/orders` or a cart checkout).
pub const ORDER_PLACED: &str = "shop.order.placed";
/// An order deleted through the monolith's API; its units go back in stock.
pub const ORDER_CANCELLED: &str = "shop.order.cancelled";
/// A product's name, description, price or stock changed.
pub const PRODUCT_UPDATED: &str = "shop.product.updated";
/// Every event type the catalogue follows.
pub const EVENT_TYPES: &[&str] = &[ORDER_PLACED, ORDER_CANCELLED, PRODUCT_UPDATED];

/// `shop.order.placed` data: the lines with names and prices from the monolith's answer, or
/// only `sku` and `quantity` (an older rule), completed from the catalogue.
#[derive(Debug, Deserialize)]
struct OrderPlaced {
    order_id: String,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    lines: Option<Vec<OrderLine>>,
}

/// `shop.order.cancelled` data.
#[derive(Debug, Deserialize)]
struct OrderCancelled {
    order_id: String,
}

/// `shop.product.updated` data: the product as the monolith answered after the change.
#[derive(Debug, Deserialize)]
struct ProductUpdated {
    sku: String,
    name: String,
    description: String,
    price_cents: i64,
    stock: i64,
    updated_at: String,
}

impl Catalogue {
    /// The monolith's seed, stamped "now" (or the stopped instant when `vary` is false) with
    /// ids made by the monolith's rules.
    pub fn seed(vary: bool) -> Catalogue {
        Catalogue::seeded(&Clock::new(vary))
    }

    /// The seed, stamped with the clock's "now" and ids made by the monolith's rules.
    pub(crate) fn seeded(clock: &Clock) -> Catalogue {
        Catalogue {
            inner: Arc::new(RwLock::new(Records::seed(clock))),
        }
    }

    /// The current records, for one answer (do not hold across an `.await`).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Records> {
        // Every change is made whole under the lock, so a poisoned lock still holds
        // consistent records.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies one of the monolith's events ([`EVENT_TYPES`]), at most once per event id.
    pub fn apply(&self, event: &Event) -> Applied {
        let mut records = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        records.apply(event)
    }

    /// A seed picture by id. The monolith stores these as PNG; PNG is lossless, so the
    /// pixels generated here are the pixels it decodes.
    pub(crate) fn picture(&self, id: &str) -> Option<DynamicImage> {
        PICTURES
            .iter()
            .find(|p| p.id == id)
            .map(|p| DynamicImage::ImageRgb8(gradient(p.width, p.height, p.from, p.to)))
    }
}

impl Records {
    /// The seed, stamped with the clock's "now" and ids made by the monolith's rules.
    fn seed(clock: &Clock) -> Records {
        let now = clock.now();
        let mut products: Vec<Product> = PRODUCTS
            .iter()
            .map(|&(sku, name, description, price_cents, stock)| Product {
                sku: sku.to_owned(),
                name: name.to_owned(),
                description: description.to_owned(),
                price_cents,
                currency: CURRENCY,
                stock,
                updated_at: now,
            })
            .collect();
        products.sort_by(|a, b| a.sku.cmp(&b.sku));
        let orders = SEED_ORDERS
            .iter()
            .enumerate()
            .map(|(n, lines)| {
                let lines: Vec<OrderLine> = lines
                    .iter()
                    .filter_map(|&(sku, quantity)| {
                        let product = products.iter().find(|p| p.sku == sku)?;
                        Some(OrderLine {
                            sku: sku.to_owned(),
                            name: product.name.clone(),
                            quantity,
                            price_cents: product.price_cents,
                        })
                    })
                    .collect();
                order(order_id(clock, n + 1), now, lines)
            })
            .collect();
        Records {
            products,
            orders,
            processed: HashSet::new(),
            cancelled: HashSet::new(),
        }
    }

    /// Every product, by SKU.
    pub(crate) fn products(&self) -> &[Product] {
        &self.products
    }

    /// Every order, oldest first.
    pub(crate) fn orders(&self) -> &[Order] {
        &self.orders
    }

    /// The `limit` newest orders, newest first (for feeds).
    pub(crate) fn recent_orders(&self, limit: usize) -> impl Iterator<Item = &Order> {
        self.orders.iter().rev().take(limit)
    }

    /// Applies one event unless its id was processed before; records the id.
    fn apply(&mut self, event: &Event) -> Applied {
        if !EVENT_TYPES.contains(&event.kind.as_str()) {
            return Applied::Ignored;
        }
        if self.processed.contains(&event.id) {
            return Applied::Duplicate;
        }
        let outcome = match event.kind.as_str() {
            ORDER_PLACED => data(event).and_then(|placed| self.order_placed(event, placed)),
            ORDER_CANCELLED => data(event).map(|cancelled| self.order_cancelled(cancelled)),
            _ => data(event).and_then(|updated| self.product_updated(updated)),
        };
        self.processed.insert(event.id.clone());
        outcome.unwrap_or_else(Applied::Rejected)
    }

    /// Adds the order at the end and takes its units out of stock, as the monolith did.
    fn order_placed(&mut self, event: &Event, placed: OrderPlaced) -> Result<Applied, String> {
        let id = placed.order_id;
        if self.cancelled.contains(&id) || self.orders.iter().any(|o| o.id == id) {
            return Ok(Applied::Unchanged);
        }
        let lines = match (placed.lines, placed.sku, placed.quantity) {
            (Some(lines), _, _) if !lines.is_empty() => lines,
            (_, Some(sku), Some(quantity)) => {
                let product = self.products.iter().find(|p| p.sku == sku).ok_or_else(|| {
                    format!("order {id} is for {sku}, a product this service does not know")
                })?;
                vec![OrderLine {
                    name: product.name.clone(),
                    price_cents: product.price_cents,
                    sku,
                    quantity,
                }]
            }
            _ => return Err(format!("order {id} has neither lines nor sku and quantity")),
        };
        let created_at = match placed.created_at {
            Some(text) => timestamp(&text).ok_or_else(|| {
                format!("order {id} has created_at {text:?}, not an RFC 3339 time")
            })?,
            None => timestamp(&event.time)
                .map(|at| at.replace_nanosecond(0).unwrap_or(at))
                .ok_or_else(|| format!("order {id}: event time {:?} unreadable", event.time))?,
        };
        for line in &lines {
            if let Some(product) = self.products.iter_mut().find(|p| p.sku == line.sku) {
                product.stock -= line.quantity;
            }
        }
        self.orders.push(order(id, created_at, lines));
        Ok(Applied::Changed)
    }

    /// Removes the order and puts its units back in stock, as the monolith did.
    fn order_cancelled(&mut self, cancelled: OrderCancelled) -> Applied {
        let id = cancelled.order_id;
        let position = self.orders.iter().position(|o| o.id == id);
        self.cancelled.insert(id);
        let Some(position) = position else {
            return Applied::Unchanged;
        };
        let order = self.orders.remove(position);
        for line in &order.lines {
            if let Some(product) = self.products.iter_mut().find(|p| p.sku == line.sku) {
                product.stock += line.quantity;
            }
        }
        Applied::Changed
    }

    /// Takes the product's fields as the monolith answered them.
    fn product_updated(&mut self, updated: ProductUpdated) -> Result<Applied, String> {
        let sku = updated.sku;
        let updated_at = timestamp(&updated.updated_at).ok_or_else(|| {
            format!(
                "product {sku} has updated_at {:?}, not an RFC 3339 time",
                updated.updated_at
            )
        })?;
        let product = self
            .products
            .iter_mut()
            .find(|p| p.sku == sku)
            .ok_or_else(|| format!("product {sku} is not one this service knows"))?;
        product.name = updated.name;
        product.description = updated.description;
        product.price_cents = updated.price_cents;
        product.stock = updated.stock;
        product.updated_at = updated_at;
        Ok(Applied::Changed)
    }
}

/// The event's data as `T`, or why it is not.
fn data<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, String> {
    event
        .data
        .parse()
        .map_err(|err| format!("{} data does not fit: {err}", event.kind))
}

/// An RFC 3339 time, as the monolith writes them.
fn timestamp(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// An order of `lines`, with its total.
fn order(id: String, created_at: OffsetDateTime, lines: Vec<OrderLine>) -> Order {
    Order {
        id,
        created_at,
        total_cents: lines.iter().map(|l| l.quantity * l.price_cents).sum(),
        currency: CURRENCY,
        lines,
    }
}

/// The monolith's order id: `ord-` and 12 random hex digits, or a 6-digit counter when
/// stable.
fn order_id(clock: &Clock, n: usize) -> String {
    match clock.random_hex(12) {
        Some(hex) => format!("ord-{hex}"),
        None => format!("ord-{n:06}"),
    }
}

/// A diagonal gradient between two colours, pixel for pixel the monolith's seed picture.
fn gradient(width: u32, height: u32, from: [u8; 3], to: [u8; 3]) -> RgbImage {
    let span = (width + height).saturating_sub(2).max(1);
    RgbImage::from_fn(width, height, |x, y| {
        let t = x + y;
        let mix = |a: u8, b: u8| {
            let (a, b) = (u32::from(a), u32::from(b));
            ((a * (span - t) + b * t) / span) as u8
        };
        Rgb([
            mix(from[0], to[0]),
            mix(from[1], to[1]),
            mix(from[2], to[2]),
        ])
    })
}

/// A price for people: `$49.99` for dollars, `EUR 12.00` for anything else.
pub(crate) fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (units, minor) = (cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
    if currency == "USD" {
        format!("{sign}${units}.{minor:02}")
    } else {
        format!("{sign}{} {units}.{minor:02}", xml_escape(currency))
    }
}

/// Escape text for XML/HTML content and quoted attribute values, as the monolith does.
pub(crate) fn xml_escape(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_seed_matches_the_monolith_ids_and_totals() {
        let catalogue = Catalogue::seed(false);
        let catalogue = catalogue.read();
        assert_eq!(catalogue.products().len(), 12);
        assert_eq!(catalogue.products()[0].sku, "BLUE-LAMP");
        let ids: Vec<&str> = catalogue.orders().iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["ord-000001", "ord-000002"]);
        assert_eq!(catalogue.orders()[1].total_cents, 2 * 4999 + 2499);
        let newest: Vec<&str> = catalogue.recent_orders(10).map(|o| o.id.as_str()).collect();
        assert_eq!(newest, ["ord-000002", "ord-000001"]);
    }

    #[test]
    fn seed_pictures_have_their_sizes() {
        let catalogue = Catalogue::seed(false);
        let img = catalogue.picture("img-2").map(|p| (p.width(), p.height()));
        assert_eq!(img, Some((48, 64)));
        assert!(catalogue.picture("img-4").is_none());
    }

    fn event(kind: &str, id: &str, data: serde_json::Value) -> Event {
        let mut event = Event::new(kind, Some("test"), "test", data);
        event.id = id.to_owned();
        event
    }

    fn stock(catalogue: &Catalogue, sku: &str) -> i64 {
        let records = catalogue.read();
        records
            .products()
            .iter()
            .find(|p| p.sku == sku)
            .map_or(-1, |p| p.stock)
    }

    #[test]
    fn orders_are_placed_and_cancelled_once_per_event_id() {
        let catalogue = Catalogue::seed(false);
        let placed = event(
            ORDER_PLACED,
            "e-1",
            serde_json::json!({"order_id": "ord-000003", "created_at": "2026-01-01T00:00:05Z",
                "status": "placed", "lines": [
                {"sku": "GLASS-VASE", "name": "Glass Vase", "quantity": 3, "price_cents": 3900}]}),
        );
        assert_eq!(catalogue.apply(&placed), Applied::Changed);
        assert_eq!(catalogue.apply(&placed), Applied::Duplicate);
        assert_eq!(stock(&catalogue, "GLASS-VASE"), 22);
        {
            let records = catalogue.read();
            let newest = records.recent_orders(1).next().unwrap();
            assert_eq!(
                (newest.id.as_str(), newest.total_cents),
                ("ord-000003", 11700)
            );
        }
        let cancelled = event(
            ORDER_CANCELLED,
            "e-2",
            serde_json::json!({"order_id": "ord-000003"}),
        );
        assert_eq!(catalogue.apply(&cancelled), Applied::Changed);
        assert_eq!(catalogue.apply(&cancelled), Applied::Duplicate);
        assert_eq!(stock(&catalogue, "GLASS-VASE"), 25);
        assert_eq!(catalogue.read().orders().len(), 2);
        // The same placement under another event id (a proxy publishing twice) stays out.
        let again = event(ORDER_PLACED, "e-3", placed.data.value());
        assert_eq!(catalogue.apply(&again), Applied::Unchanged);
        assert_eq!(catalogue.read().orders().len(), 2);
    }

    #[test]
    fn an_older_rule_is_completed_and_bad_data_is_rejected() {
        let catalogue = Catalogue::seed(false);
        let placed = event(
            ORDER_PLACED,
            "e-1",
            serde_json::json!({"order_id": "ord-000003", "sku": "BLUE-LAMP", "quantity": 2,
                "created_at": "2026-01-01T00:00:00Z"}),
        );
        assert_eq!(catalogue.apply(&placed), Applied::Changed);
        assert_eq!(catalogue.read().orders()[2].lines[0].name, "Blue Lamp");
        let unknown = event(PRODUCT_UPDATED, "e-2", serde_json::json!({"sku": "NOPE"}));
        assert!(matches!(catalogue.apply(&unknown), Applied::Rejected(_)));
        let other = event("shop.batch.added", "e-3", serde_json::json!({}));
        assert_eq!(catalogue.apply(&other), Applied::Ignored);
    }

    #[test]
    fn product_updates_take_the_monolith_fields() {
        let catalogue = Catalogue::seed(false);
        let updated = event(
            PRODUCT_UPDATED,
            "e-1",
            serde_json::json!({"sku": "BLUE-LAMP", "name": "Blue Lamp", "description": "New",
                "price_cents": 3100, "stock": 14, "updated_at": "2026-02-03T04:05:06Z"}),
        );
        assert_eq!(catalogue.apply(&updated), Applied::Changed);
        let records = catalogue.read();
        let lamp = &records.products()[0];
        assert_eq!(
            (lamp.price_cents, lamp.stock, lamp.description.as_str()),
            (3100, 14, "New")
        );
        assert_eq!(
            super::super::clock::rfc3339(lamp.updated_at),
            "2026-02-03T04:05:06Z"
        );
    }

    #[test]
    fn money_and_escaping() {
        assert_eq!(money(4999, "USD"), "$49.99");
        assert_eq!(money(-5, "USD"), "-$0.05");
        assert_eq!(money(1200, "EUR"), "EUR 12.00");
        assert_eq!(xml_escape("a & 'b' <c>"), "a &amp; &#39;b&#39; &lt;c&gt;");
    }
}
