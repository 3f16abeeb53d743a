-- Facts about the store itself: its id (random, made once, kept by every copy and backup) and
-- the health check's last write.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
