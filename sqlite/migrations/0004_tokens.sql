-- API tokens, kept by the SHA-256 hash of their secrets (the secret itself is never stored),
-- and the network address each event's request came from.

CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    data       TEXT NOT NULL,
    revoked_at TEXT
);

ALTER TABLE events ADD COLUMN peer TEXT NOT NULL DEFAULT '';
