-- The shop's data as the API shows it: catalogue, orders, batches and their allocations.
-- Text columns sort bytewise (COLLATE "C"), as SQLite does, so lists come out in the monolith's order.
CREATE TABLE products (
    sku         TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL,
    price_cents BIGINT NOT NULL,
    currency    TEXT COLLATE "C" NOT NULL,
    stock       BIGINT NOT NULL,
    image_id    TEXT COLLATE "C",
    updated_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE orders (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT COLLATE "C" NOT NULL UNIQUE,
    status     TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE order_lines (
    order_id    TEXT COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line        BIGINT NOT NULL,
    sku         TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    quantity    BIGINT NOT NULL,
    price_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, line)
);

CREATE TABLE batches (
    reference  TEXT COLLATE "C" PRIMARY KEY,
    sku        TEXT COLLATE "C" NOT NULL,
    quantity   BIGINT NOT NULL,
    eta        TEXT COLLATE "C",
    created_at TEXT COLLATE "C" NOT NULL
);

-- No foreign key to batches: an allocation learnt from an event may arrive before its batch.
CREATE TABLE allocations (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batchref     TEXT COLLATE "C" NOT NULL,
    orderid      TEXT COLLATE "C" NOT NULL,
    sku          TEXT COLLATE "C" NOT NULL,
    qty          BIGINT NOT NULL,
    allocated_at TEXT COLLATE "C" NOT NULL,
    UNIQUE (orderid, sku)
);

CREATE TABLE counters (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BIGINT NOT NULL
);
