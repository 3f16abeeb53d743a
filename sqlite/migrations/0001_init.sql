-- slipway's first schema. Each record is kept whole as JSON (the data or spec column) beside
-- the columns that queries filter and sort on. Times in columns are RFC 3339 UTC text, except
-- analysis_runs.started_at, which is unix nanoseconds so that it sorts.

CREATE TABLE apps (
    name          TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,
    stable        TEXT NOT NULL DEFAULT '',
    history_limit INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    version       INTEGER NOT NULL
);

CREATE TABLE templates (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);

CREATE TABLE revisions (
    app        TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    number     INTEGER NOT NULL,
    version    TEXT NOT NULL DEFAULT '',
    spec       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app, id)
);

CREATE INDEX revisions_app_number ON revisions (app, number);

CREATE TABLE rollouts (
    id       TEXT PRIMARY KEY,
    app      TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    number   INTEGER NOT NULL,
    phase    TEXT NOT NULL,
    active   INTEGER NOT NULL,
    from_rev TEXT NOT NULL DEFAULT '',
    to_rev   TEXT NOT NULL DEFAULT '',
    data     TEXT NOT NULL,
    version  INTEGER NOT NULL
);

CREATE INDEX rollouts_app_number ON rollouts (app, number);
CREATE INDEX rollouts_active ON rollouts (app, number) WHERE active = 1;

CREATE TABLE analysis_runs (
    id         TEXT PRIMARY KEY,
    rollout    TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    app        TEXT NOT NULL,
    phase      TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    data       TEXT NOT NULL,
    version    INTEGER NOT NULL
);

CREATE INDEX analysis_runs_rollout ON analysis_runs (rollout, started_at);

-- Events are the audit trail: no foreign keys, so they outlive the apps they speak of.
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    time    TEXT NOT NULL,
    app     TEXT NOT NULL DEFAULT '',
    rollout TEXT NOT NULL DEFAULT '',
    kind    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    message TEXT NOT NULL,
    reason  TEXT NOT NULL DEFAULT '',
    data    TEXT
);

CREATE INDEX events_app ON events (app, seq);
CREATE INDEX events_rollout ON events (rollout, seq);
