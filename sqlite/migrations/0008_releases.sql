-- Continuous deployment: pipelines (kind: Pipeline) and releases, each kept whole as JSON
-- with the columns their queries need, and the webhook deliveries already taken (a replayed
-- delivery is recognised by its ID).

CREATE TABLE pipelines (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);

CREATE TABLE releases (
    id         TEXT PRIMARY KEY,
    app        TEXT NOT NULL,
    number     INTEGER NOT NULL,
    phase      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    UNIQUE (app, number)
);

CREATE INDEX releases_active ON releases (phase);

CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
);
