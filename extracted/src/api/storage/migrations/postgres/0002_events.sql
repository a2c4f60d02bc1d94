-- Keeping in step with the monolith by its events: which events were applied (the
-- idempotency key), orders it cancelled, and the allocation projection of placed orders.
CREATE TABLE processed_events (
    id           TEXT COLLATE "C" PRIMARY KEY,
    type         TEXT COLLATE "C" NOT NULL,
    outcome      TEXT COLLATE "C" NOT NULL,
    processed_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE cancelled_orders (
    id           TEXT COLLATE "C" PRIMARY KEY,
    cancelled_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE order_allocations (
    order_id TEXT COLLATE "C" NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line     BIGINT NOT NULL,
    sku      TEXT COLLATE "C" NOT NULL,
    qty      BIGINT NOT NULL,
    batchref TEXT COLLATE "C",
    PRIMARY KEY (order_id, line)
);

CREATE INDEX order_lines_by_sku ON order_lines (sku);
CREATE INDEX order_allocations_by_sku ON order_allocations (sku);
