-- Dashboards (Lagoon-style): the YAML source as applied, per operator.
-- The source is parsed again on read; title is kept for listings.

-- +goose Up
CREATE TABLE dashboards (
    operator_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    title       TEXT NOT NULL,
    source      TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (operator_id, name)
);

-- +goose Down
DROP TABLE dashboards;
