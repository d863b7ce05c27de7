-- Per-minute aggregates of the numeric values of Harvest Data entries: one
-- row per resource, top-level numeric (or boolean, as 0/1) key of a JSON
-- object entry, and minute. Time-series panels over long ranges read these
-- (thousands of rows, not millions); short ranges read the entries.

-- +goose Up
CREATE TABLE data_rollups (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    key           TEXT NOT NULL,
    start         BIGINT NOT NULL,
    sum           DOUBLE PRECISION NOT NULL,
    count         BIGINT NOT NULL,
    min           DOUBLE PRECISION NOT NULL,
    max           DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (resource_type, resource_id, key, start)
);

-- +goose Down
DROP TABLE data_rollups;
