-- Flow engine (Flux-style apps): app definitions, incoming-webhook
-- tokens, and the run history (one run per source event, one step row per
-- channel event and per action attempt).

-- +goose Up
CREATE TABLE flux_apps (
    operator_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    source      TEXT NOT NULL,
    version     BIGINT NOT NULL,
    hook_salt   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (operator_id, name)
);

-- token_hash is the SHA-256 of the secret in the webhook URL; the URL
-- itself is derived from the app's hook_salt and the node secret key.
CREATE TABLE flux_hooks (
    token_hash  TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    app         TEXT NOT NULL,
    channel     TEXT NOT NULL
);
CREATE INDEX flux_hooks_app ON flux_hooks (operator_id, app);

CREATE TABLE flux_runs (
    id          TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    app         TEXT NOT NULL,
    channel     TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL,
    pending     BIGINT NOT NULL,
    steps       BIGINT NOT NULL,
    error       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX flux_runs_app ON flux_runs (operator_id, app, started_at);
CREATE INDEX flux_runs_prune ON flux_runs (status, updated_at);

CREATE TABLE flux_steps (
    run_id      TEXT NOT NULL,
    work_id     TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    channel     TEXT NOT NULL,
    action      TEXT NOT NULL,
    hop         INTEGER NOT NULL,
    status      TEXT NOT NULL,
    condition   TEXT NOT NULL,
    input       TEXT,
    config      TEXT,
    output      TEXT,
    emitted     TEXT,
    error       TEXT NOT NULL,
    note        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    PRIMARY KEY (run_id, work_id, attempt)
);

-- +goose Down
DROP TABLE flux_steps;
DROP TABLE flux_runs;
DROP TABLE flux_hooks;
DROP TABLE flux_apps;
