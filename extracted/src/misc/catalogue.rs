//! The service's own data: a static seed of the monolith's catalogue.
//!
//! The misc service has no shop database. The feeds, the CSV export and the thumbnails of
//! stored pictures read the products, the orders and the pictures the monolith seeds its
//! database with, so this module carries the same seed: the same products, the same two
//! orders placed "before the shop opened", and the same generated gradient pictures. Their
//! timestamps are this service's start time (the stopped clock's instant when stable) and the
//! order ids follow the monolith's id rules, so a stable run matches a stable monolith.
//!
//! What the monolith learns after it starts — new orders, product edits, uploaded pictures —
//! is not here yet: an event consumer that copies it from the bus comes later.

use image::{DynamicImage, Rgb, RgbImage};
use time::OffsetDateTime;

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
    pub(crate) sku: &'static str,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderLine {
    pub(crate) name: &'static str,
    pub(crate) quantity: i64,
    pub(crate) price_cents: i64,
}

/// Products (by SKU, as the monolith lists them) and orders (oldest first).
#[derive(Debug)]
pub(crate) struct Catalogue {
    products: Vec<Product>,
    orders: Vec<Order>,
}

impl Catalogue {
    /// The seed, stamped with the clock's "now" and ids made by the monolith's rules.
    pub(crate) fn seed(clock: &Clock) -> Catalogue {
        let now = clock.now();
        let mut products: Vec<Product> = PRODUCTS
            .iter()
            .map(|&(sku, name, description, price_cents, stock)| Product {
                sku,
                name,
                description,
                price_cents,
                currency: CURRENCY,
                stock,
                updated_at: now,
            })
            .collect();
        products.sort_by(|a, b| a.sku.cmp(b.sku));
        let orders = SEED_ORDERS
            .iter()
            .enumerate()
            .map(|(n, lines)| {
                let lines: Vec<OrderLine> = lines
                    .iter()
                    .filter_map(|&(sku, quantity)| {
                        let product = products.iter().find(|p| p.sku == sku)?;
                        Some(OrderLine {
                            name: product.name,
                            quantity,
                            price_cents: product.price_cents,
                        })
                    })
                    .collect();
                Order {
                    id: order_id(clock, n + 1),
                    created_at: now,
                    total_cents: lines.iter().map(|l| l.quantity * l.price_cents).sum(),
                    currency: CURRENCY,
                    lines,
                }
            })
            .collect();
        Catalogue { products, orders }
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

    /// A seed picture by id. The monolith stores these as PNG; PNG is lossless, so the
    /// pixels generated here are the pixels it decodes.
    pub(crate) fn picture(&self, id: &str) -> Option<DynamicImage> {
        PICTURES
            .iter()
            .find(|p| p.id == id)
            .map(|p| DynamicImage::ImageRgb8(gradient(p.width, p.height, p.from, p.to)))
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
        let catalogue = Catalogue::seed(&Clock::new(false));
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
        let catalogue = Catalogue::seed(&Clock::new(false));
        let img = catalogue.picture("img-2").map(|p| (p.width(), p.height()));
        assert_eq!(img, Some((48, 64)));
        assert!(catalogue.picture("img-4").is_none());
    }

    #[test]
    fn money_and_escaping() {
        assert_eq!(money(4999, "USD"), "$49.99");
        assert_eq!(money(-5, "USD"), "-$0.05");
        assert_eq!(money(1200, "EUR"), "EUR 12.00");
        assert_eq!(xml_escape("a & 'b' <c>"), "a &amp; &#39;b&#39; &lt;c&gt;");
    }
}
