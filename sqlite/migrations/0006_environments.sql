-- The environments a server serves besides its default one (kind: Environment): each runs its
-- apps on its own target, with a store of its own under DATA/env/NAME/. data is the
-- slipway.Environment as JSON.

CREATE TABLE environments (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
