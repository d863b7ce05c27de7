-- Transactional outbox for Harvest Data: the writer adds a row in the same
-- transaction as each entry; the node's relay publishes the entry to the
-- HARVEST stream and deletes the row once JetStream has acknowledged it.
-- seq is a per-node counter, so each node drains its own rows in order.

-- +goose Up
CREATE TABLE harvest_outbox (
    node          TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    time          BIGINT NOT NULL,
    PRIMARY KEY (node, seq)
);

-- +goose Down
DROP TABLE harvest_outbox;
