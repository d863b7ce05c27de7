-- One schema text for SQLite and PostgreSQL: portable types only (TEXT,
-- BIGINT, BYTEA is stored as BLOB by SQLite), times as UNIX milliseconds.

-- +goose Up
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE operators (
    operator_id   TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);

CREATE TABLE users (
    operator_id   TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    permission    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (operator_id, user_name)
);

CREATE TABLE default_permissions (
    operator_id TEXT PRIMARY KEY,
    permissions TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- user_name '' is the operator's root account.
CREATE TABLE auth_keys (
    auth_key_id  TEXT PRIMARY KEY,
    operator_id  TEXT NOT NULL,
    user_name    TEXT NOT NULL DEFAULT '',
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
    api_key     TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    operator_id TEXT NOT NULL,
    user_name   TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE device_groups (
    group_id      TEXT PRIMARY KEY,
    operator_id   TEXT NOT NULL,
    configuration TEXT NOT NULL DEFAULT '{}',
    tags          TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE devices (
    device_id   TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    group_id    TEXT NOT NULL DEFAULT '',
    secret_hash TEXT NOT NULL,
    attributes  TEXT NOT NULL DEFAULT '{}',
    tags        TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX devices_group ON devices (group_id);

CREATE TABLE sims (
    sim_id      TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    ip_address  TEXT NOT NULL DEFAULT '',
    group_id    TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE data_entries (
    operator_id   TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    time          BIGINT NOT NULL,
    content_type  TEXT NOT NULL,
    content       BYTEA NOT NULL,
    category      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (resource_type, resource_id, time)
);

CREATE TABLE data_resources (
    operator_id     TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    last_modified   BIGINT NOT NULL,
    attribute_names TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (resource_type, resource_id)
);

CREATE TABLE credentials (
    operator_id    TEXT NOT NULL,
    credentials_id TEXT NOT NULL,
    type           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    ciphertext     TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    last_used_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (operator_id, credentials_id)
);

-- +goose Down
DROP TABLE credentials;
DROP TABLE data_resources;
DROP TABLE data_entries;
DROP TABLE sims;
DROP TABLE devices;
DROP TABLE device_groups;
DROP TABLE tokens;
DROP TABLE auth_keys;
DROP TABLE default_permissions;
DROP TABLE users;
DROP TABLE operators;
DROP TABLE meta;
