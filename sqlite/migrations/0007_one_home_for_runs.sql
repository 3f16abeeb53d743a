-- One home for analysis runs: a flag ramp's runs move out of the ramp's JSON into
-- analysis_runs, which now holds runs of a rollout (rollout set) or of a ramp (flag set);
-- the ramp keeps its current run's ID. Ramps speak the rollouts' phases: RolledBack becomes
-- Aborted.

CREATE TABLE analysis_runs_new (
    id         TEXT PRIMARY KEY,
    rollout    TEXT REFERENCES rollouts (id) ON DELETE CASCADE,
    flag       TEXT,
    app        TEXT NOT NULL,
    phase      TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    data       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    CHECK ((rollout IS NULL) <> (flag IS NULL))
);

INSERT INTO analysis_runs_new (id, rollout, flag, app, phase, started_at, data, version)
    SELECT id, rollout, NULL, app, phase, started_at, data, version FROM analysis_runs;

DROP TABLE analysis_runs;
ALTER TABLE analysis_runs_new RENAME TO analysis_runs;
CREATE INDEX analysis_runs_rollout ON analysis_runs (rollout, started_at);
CREATE INDEX analysis_runs_flag ON analysis_runs (flag, started_at);

INSERT INTO analysis_runs (id, rollout, flag, app, phase, started_at, data, version)
    SELECT json_extract(data, '$.run.id'), NULL, flag, '', json_extract(data, '$.run.phase'),
           COALESCE(CAST(strftime('%s', substr(json_extract(data, '$.run.startedAt'), 1, 19)) AS INTEGER), 0) * 1000000000,
           json_set(json_extract(data, '$.run'), '$.flag', flag), 1
    FROM ramps WHERE json_extract(data, '$.run.id') IS NOT NULL;

UPDATE ramps SET data = json_set(json_remove(data, '$.run'), '$.runId', json_extract(data, '$.run.id'))
    WHERE json_extract(data, '$.run.id') IS NOT NULL;

UPDATE ramps SET phase = 'Aborted', data = json_set(data, '$.phase', 'Aborted') WHERE phase = 'RolledBack';
