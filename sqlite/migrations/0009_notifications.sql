-- Notifications (kind: Notification), how far each has sent each environment's events (by
-- the environment's event Seq), and the log of what was sent.

CREATE TABLE notifications (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);

CREATE TABLE notify_cursors (
    notification TEXT NOT NULL,
    environment  TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (notification, environment)
);

CREATE TABLE notify_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    notification TEXT NOT NULL,
    environment  TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    code         INTEGER NOT NULL,
    error        TEXT NOT NULL,
    time         TEXT NOT NULL
);

CREATE INDEX notify_deliveries_by_name ON notify_deliveries (notification, id);
