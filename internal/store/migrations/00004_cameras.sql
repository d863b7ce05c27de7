-- Cameras (SoraCam-style registry), their image exports, and the index of
-- recorded segments (the segments themselves live in the blob store).

-- +goose Up
CREATE TABLE cameras (
    operator_id     TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    name            TEXT NOT NULL,
    driver          TEXT NOT NULL,
    rtsp_url        TEXT NOT NULL,
    credentials_id  TEXT NOT NULL,
    recording       INTEGER NOT NULL,
    retention_days  INTEGER NOT NULL,
    snapshot_cache  INTEGER NOT NULL,
    upstream        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_connected  BIGINT NOT NULL,
    PRIMARY KEY (operator_id, device_id)
);

CREATE TABLE camera_exports (
    export_id      TEXT PRIMARY KEY,
    operator_id    TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    requested_time BIGINT NOT NULL,
    capture_time   BIGINT NOT NULL,
    status         TEXT NOT NULL,
    error          TEXT NOT NULL,
    harvest_prefix TEXT,
    file_path      TEXT NOT NULL,
    blob_key       TEXT NOT NULL,
    url            TEXT NOT NULL,
    expiry_time    BIGINT NOT NULL,
    attempts       INTEGER NOT NULL,
    not_before     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX camera_exports_device ON camera_exports (operator_id, device_id, requested_time);
CREATE INDEX camera_exports_status ON camera_exports (status, not_before);

CREATE TABLE camera_segments (
    operator_id TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    blob_key    TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    frames      BIGINT NOT NULL,
    PRIMARY KEY (operator_id, device_id, start_ms)
);
CREATE INDEX camera_segments_end ON camera_segments (end_ms);

-- +goose Down
DROP TABLE camera_segments;
DROP TABLE camera_exports;
DROP TABLE cameras;
