//! Seed data for an empty database: a catalog, a few batches, two orders and three
//! generated PNG pictures. Everything here is deterministic; only timestamps and order ids
//! follow the clock.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};
use rusqlite::params;

use super::{IdKind, Store};
use crate::error::Error;

/// A catalog entry to seed.
struct SeedProduct {
    sku: &'static str,
    name: &'static str,
    description: &'static str,
    price_cents: i64,
    stock: i64,
    /// Id of one of the generated pictures.
    image: Option<&'static str>,
}

const fn product(
    sku: &'static str,
    name: &'static str,
    description: &'static str,
    price_cents: i64,
    stock: i64,
    image: Option<&'static str>,
) -> SeedProduct {
    SeedProduct {
        sku,
        name,
        description,
        price_cents,
        stock,
        image,
    }
}

const PRODUCTS: &[SeedProduct] = &[
    product(
        "RED-CHAIR",
        "Red Chair",
        "A sturdy beech chair, lacquered a deep red.",
        4999,
        20,
        Some("img-1"),
    ),
    product(
        "BLUE-LAMP",
        "Blue Lamp",
        "Desk lamp with a cobalt enamel shade.",
        2950,
        15,
        Some("img-2"),
    ),
    product(
        "GREEN-SOFA",
        "Green Sofa",
        "Three seats of moss-green velvet.",
        89900,
        3,
        Some("img-3"),
    ),
    product(
        "OAK-TABLE",
        "Oak Dining Table",
        "Solid oak, seats six; oiled finish.",
        34900,
        4,
        None,
    ),
    product(
        "BRASS-CLOCK",
        "Brass Wall Clock",
        "Silent sweep movement in a brushed brass case.",
        7450,
        12,
        None,
    ),
    product(
        "WOOL-RUG",
        "Wool Rug",
        "Hand-knotted, 160 × 230 cm, undyed wool.",
        21900,
        6,
        None,
    ),
    product(
        "GLASS-VASE",
        "Glass Vase",
        "Mouth-blown smoked glass, 30 cm tall.",
        3900,
        25,
        None,
    ),
    product(
        "PINE-SHELF",
        "Pine Shelf",
        "Wall shelf, 80 cm, with hidden brackets.",
        2499,
        40,
        None,
    ),
    product(
        "LINEN-CURTAIN",
        "Linen Curtain",
        "Stone-washed linen panel, 140 × 250 cm.",
        5900,
        18,
        None,
    ),
    product(
        "STEEL-STOOL",
        "Steel Stool",
        "Small & sturdy: the \"classic\" <workshop> stool.",
        6500,
        9,
        None,
    ),
    product(
        "CERAMIC-MUG",
        "Ceramic Mug",
        "Glazed stoneware mug, 350 ml. Dishwasher safe.",
        1200,
        120,
        None,
    ),
    product(
        "COTTON-THROW",
        "Cotton Throw",
        "Waffle-weave throw in oatmeal cotton.",
        4500,
        0,
        None,
    ),
];

/// (reference, sku, quantity, eta)
const BATCHES: &[(&str, &str, i64, Option<&str>)] = &[
    ("batch-001", "RED-CHAIR", 20, None),
    ("batch-002", "RED-CHAIR", 100, Some("2026-02-15")),
    ("batch-003", "BLUE-LAMP", 10, Some("2026-01-20")),
    ("batch-004", "BLUE-LAMP", 30, Some("2026-03-01")),
    ("batch-005", "OAK-TABLE", 5, None),
];

/// The lines (sku, quantity) of the orders placed before the shop opened.
const SEED_ORDERS: &[&[(&str, i64)]] = &[
    &[("CERAMIC-MUG", 4)],
    &[("RED-CHAIR", 2), ("PINE-SHELF", 1)],
];

/// A generated gradient picture: its id, size, and the colours at opposite corners.
struct SeedImage {
    id: &'static str,
    width: u32,
    height: u32,
    from: [u8; 3],
    to: [u8; 3],
}

const IMAGES: &[SeedImage] = &[
    SeedImage {
        id: "img-1",
        width: 64,
        height: 48,
        from: [200, 30, 40],
        to: [255, 200, 120],
    },
    SeedImage {
        id: "img-2",
        width: 48,
        height: 64,
        from: [20, 40, 160],
        to: [150, 220, 255],
    },
    SeedImage {
        id: "img-3",
        width: 96,
        height: 96,
        from: [20, 110, 40],
        to: [210, 240, 150],
    },
];

/// Fill an empty database; leaves a populated one alone.
pub(super) fn seed_if_empty(store: &Store) -> Result<(), Error> {
    let count: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM products", [], |row| row.get(0))?;
    if count > 0 {
        return Ok(());
    }
    let pictures = IMAGES
        .iter()
        .map(|picture| gradient_png(picture).map(|png| (picture, png)))
        .collect::<Result<Vec<_>, _>>()?;

    let now = store.clock.timestamp();
    {
        let mut conn = store.conn();
        let tx = conn.transaction()?;
        for (picture, png) in &pictures {
            store.insert_image_as(
                &tx,
                picture.id,
                "image/png",
                picture.width,
                picture.height,
                png,
            )?;
        }
        tx.execute(
            "INSERT INTO counters (name, value) VALUES ('img', ?1)",
            [pictures.len() as i64],
        )?;
        for p in PRODUCTS {
            tx.execute(
                "INSERT INTO products (sku, name, description, price_cents, currency, stock, image_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'USD', ?5, ?6, ?7)",
                params![p.sku, p.name, p.description, p.price_cents, p.stock, p.image, now],
            )?;
        }
        for (reference, sku, quantity, eta) in BATCHES {
            tx.execute(
                "INSERT INTO batches (reference, sku, quantity, eta, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![reference, sku, quantity, eta, now],
            )?;
        }
        // Two past orders, so feeds and exports have something to show from the start.
        for lines in SEED_ORDERS {
            let id = store.next_id(&tx, IdKind::Order)?;
            tx.execute(
                "INSERT INTO orders (id, session, status, created_at) VALUES (?1, NULL, 'placed', ?2)",
                params![id, now],
            )?;
            for (n, (sku, quantity)) in lines.iter().enumerate() {
                tx.execute(
                    "INSERT INTO order_lines (order_id, line, sku, name, quantity, price_cents)
                     SELECT ?1, ?2, sku, name, ?4, price_cents FROM products WHERE sku = ?3",
                    params![id, n as i64, sku, quantity],
                )?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}

/// A PNG of a diagonal gradient between two colours.
fn gradient_png(picture: &SeedImage) -> Result<Vec<u8>, Error> {
    let SeedImage {
        id,
        width,
        height,
        from,
        to,
    } = *picture;
    let span = (width + height).saturating_sub(2).max(1);
    let pixels = RgbImage::from_fn(width, height, |x, y| {
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
    });
    let mut png = Cursor::new(Vec::new());
    pixels
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|source| Error::SeedImage {
            id: id.to_owned(),
            source,
        })?;
    Ok(png.into_inner())
}
