//! The schema, applied on every start (`IF NOT EXISTS`, so a file database keeps its data).

/// Tables: catalog, orders and their lines, carts, batches and allocations, images, counters.
pub(super) const SCHEMA: &str = "
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    stock       INTEGER NOT NULL,
    image_id    TEXT,
    updated_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    session    TEXT,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS order_lines (
    order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line        INTEGER NOT NULL,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    quantity    INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, line)
);

CREATE TABLE IF NOT EXISTS carts (
    session    TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS cart_items (
    session  TEXT NOT NULL REFERENCES carts (session) ON DELETE CASCADE,
    sku      TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    added    INTEGER NOT NULL,
    PRIMARY KEY (session, sku)
);

CREATE TABLE IF NOT EXISTS batches (
    reference  TEXT PRIMARY KEY,
    sku        TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    eta        TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS allocations (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    batchref     TEXT NOT NULL REFERENCES batches (reference) ON DELETE CASCADE,
    orderid      TEXT NOT NULL,
    sku          TEXT NOT NULL,
    qty          INTEGER NOT NULL,
    allocated_at TEXT NOT NULL,
    UNIQUE (orderid, sku)
);

CREATE TABLE IF NOT EXISTS images (
    id           TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    data         BLOB NOT NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";
