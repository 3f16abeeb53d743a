-- Flag ramps: one row per ramped flag, its state kept whole as JSON. No foreign key: a ramp
-- speaks of a flag inside a flag set's JSON, and the engine ends ramps of removed flags.

CREATE TABLE ramps (
    flag    TEXT PRIMARY KEY,
    phase   TEXT NOT NULL,
    data    TEXT NOT NULL,
    version INTEGER NOT NULL
);
