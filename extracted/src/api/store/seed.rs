//! Seed data for an empty database: the monolith's catalogue, batches and two past orders —
//! a copy of legacy-shim's seed (the service never links the monolith), so that both start
//! from the same data and answer alike. Only timestamps and order ids follow the clock.

use super::{Store, ids, projection};
use crate::api::storage::{DbError, Value};

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

/// Fill an empty database (no products); leaves a populated one alone.
pub(super) async fn seed_if_empty(store: &Store) -> Result<(), DbError> {
    let mut tx = store.begin().await?;
    let count = tx
        .query_opt("SELECT COUNT(*) FROM products", &[])
        .await?
        .map(|row| row.int(0))
        .transpose()?
        .unwrap_or(0);
    if count > 0 {
        return tx.commit().await;
    }
    let now = store.clock().timestamp();
    for p in PRODUCTS {
        tx.execute(
            "INSERT INTO products (sku, name, description, price_cents, currency, stock, image_id, updated_at)
             VALUES ($1, $2, $3, $4, 'USD', $5, $6, $7)",
            &[
                p.sku.into(),
                p.name.into(),
                p.description.into(),
                p.price_cents.into(),
                p.stock.into(),
                p.image.into(),
                now.as_str().into(),
            ],
        )
        .await?;
    }
    for (reference, sku, quantity, eta) in BATCHES {
        tx.execute(
            "INSERT INTO batches (reference, sku, quantity, eta, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                (*reference).into(),
                (*sku).into(),
                (*quantity).into(),
                Value::from(*eta),
                now.as_str().into(),
            ],
        )
        .await?;
    }
    // Two past orders (the seed takes no stock for them, as the monolith's does not).
    let mut skus = Vec::new();
    for lines in SEED_ORDERS {
        let id = ids::next_order_id(&mut tx, store.clock()).await?;
        tx.execute(
            "INSERT INTO orders (id, status, created_at) VALUES ($1, 'placed', $2)",
            &[id.as_str().into(), now.as_str().into()],
        )
        .await?;
        for (n, (sku, quantity)) in lines.iter().enumerate() {
            let Some(product) = PRODUCTS.iter().find(|p| p.sku == *sku) else {
                continue;
            };
            tx.execute(
                "INSERT INTO order_lines (order_id, line, sku, name, quantity, price_cents)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    id.as_str().into(),
                    Value::Int(n as i64),
                    (*sku).into(),
                    product.name.into(),
                    (*quantity).into(),
                    product.price_cents.into(),
                ],
            )
            .await?;
            skus.push((*sku).to_owned());
        }
    }
    projection::recompute_skus_in(&mut tx, &skus).await?;
    tx.commit().await
}
