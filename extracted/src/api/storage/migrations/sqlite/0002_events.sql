-- Keeping in step with the monolith by its events: which events were applied (the
-- idempotency key), orders it cancelled, and the allocation projection of placed orders.
CREATE TABLE processed_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    processed_at TEXT NOT NULL
);

CREATE TABLE cancelled_orders (
    id           TEXT PRIMARY KEY,
    cancelled_at TEXT NOT NULL
);

CREATE TABLE order_allocations (
    order_id TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line     INTEGER NOT NULL,
    sku      TEXT NOT NULL,
    qty      INTEGER NOT NULL,
    batchref TEXT,
    PRIMARY KEY (order_id, line)
);

CREATE INDEX order_lines_by_sku ON order_lines (sku);
CREATE INDEX order_allocations_by_sku ON order_allocations (sku);
