-- Feature flags. flag_sets holds each set's current version; flag_versions keeps every
-- version ever written (no foreign key: history outlives a deleted set, and a set created
-- again continues its numbering). flag_stats holds evaluation statistics, written in batches.

CREATE TABLE flag_sets (
    id      TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    data    TEXT NOT NULL,
    updated TEXT NOT NULL,
    actor   TEXT NOT NULL,
    reason  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE flag_versions (
    set_id  TEXT NOT NULL,
    version INTEGER NOT NULL,
    data    TEXT NOT NULL,
    time    TEXT NOT NULL,
    actor   TEXT NOT NULL,
    reason  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (set_id, version)
);

CREATE TABLE flag_stats (
    key            TEXT PRIMARY KEY,
    last_evaluated TEXT NOT NULL,
    last_variant   TEXT NOT NULL DEFAULT '',
    single_since   TEXT NOT NULL DEFAULT '',
    evaluations    INTEGER NOT NULL DEFAULT 0
);
