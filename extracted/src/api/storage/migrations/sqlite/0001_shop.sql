-- The shop's data as the API shows it: catalogue, orders, batches and their allocations.
CREATE TABLE products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    stock       INTEGER NOT NULL,
    image_id    TEXT,
    updated_at  TEXT NOT NULL
);

CREATE TABLE orders (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE order_lines (
    order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line        INTEGER NOT NULL,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    quantity    INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, line)
);

CREATE TABLE batches (
    reference  TEXT PRIMARY KEY,
    sku        TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    eta        TEXT,
    created_at TEXT NOT NULL
);

-- No foreign key to batches: an allocation learnt from an event may arrive before its batch.
CREATE TABLE allocations (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    batchref     TEXT NOT NULL,
    orderid      TEXT NOT NULL,
    sku          TEXT NOT NULL,
    qty          INTEGER NOT NULL,
    allocated_at TEXT NOT NULL,
    UNIQUE (orderid, sku)
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
