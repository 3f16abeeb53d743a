package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"slipway.dev/slipway"
)

var _ slipway.RampStore = (*Store)(nil)

// rampSelect reads a ramp with its current analysis run, in one statement (one snapshot).
const rampSelect = `SELECT r.data, r.version, a.data, a.version FROM ramps r
	LEFT JOIN analysis_runs a ON a.id = json_extract(r.data, '$.runId') AND a.flag = r.flag`

// Ramps returns every stored ramp, by flag key.
func (s *Store) Ramps(ctx context.Context) ([]slipway.Ramp, error) {
	const op = "read ramps"
	rows, err := s.r.QueryContext(ctx, rampSelect+` ORDER BY r.flag`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []slipway.Ramp
	for rows.Next() {
		r, err := scanRamp(rows)
		if err != nil {
			return nil, internal(op, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// Ramp returns the ramp of flag key, or ENOTFOUND.
func (s *Store) Ramp(ctx context.Context, key string) (slipway.Ramp, error) {
	r, err := scanRamp(s.r.QueryRowContext(ctx, rampSelect+` WHERE r.flag = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return slipway.Ramp{}, notFound("ramp", key)
	}
	if err != nil {
		return slipway.Ramp{}, internal("read ramp "+key, err)
	}
	return r, nil
}

// scanRamp decodes a row of rampSelect.
func scanRamp(sc scanner) (slipway.Ramp, error) {
	var data string
	var runData sql.NullString
	var v int64
	var runV sql.NullInt64
	if err := sc.Scan(&data, &v, &runData, &runV); err != nil {
		return slipway.Ramp{}, err
	}
	var r slipway.Ramp
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return slipway.Ramp{}, err
	}
	r.Version = v
	if r.RunID != "" {
		if !runData.Valid {
			return slipway.Ramp{}, fmt.Errorf("ramp %s: its analysis run %s is missing", r.Flag, r.RunID)
		}
		var run slipway.AnalysisRun
		if err := json.Unmarshal([]byte(runData.String), &run); err != nil {
			return slipway.Ramp{}, err
		}
		run.Version = runV.Int64
		r.Run = &run
	}
	return r, nil
}

// SaveRamp writes r and events in one transaction: Version 0 inserts r (ECONFLICT when the
// flag has a ramp), any other Version must be the stored one (ECONFLICT otherwise,
// ENOTFOUND when there is none). On success r.Version is the stored version and every
// event has its Seq and Time.
func (s *Store) SaveRamp(ctx context.Context, r *slipway.Ramp, events ...slipway.Event) error {
	op := "write ramp " + r.Flag
	switch {
	case r.Flag == "":
		return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.EINVALID, "a ramp needs a flag key"))
	case r.Version < 0:
		return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.EINVALID, "ramp %q has negative version %d", r.Flag, r.Version))
	}
	// The ramp's current run is stored with the other analysis runs; the ramp keeps its ID.
	rec := *r
	rec.Version, rec.Run, rec.RunID = 0, nil, ""
	var runData []byte
	if r.Run != nil {
		if r.Run.ID == "" {
			return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.EINVALID, "the ramp's analysis run has no ID"))
		}
		run := *r.Run
		run.Version, run.Flag = 0, r.Flag
		var err error
		if runData, err = json.Marshal(run); err != nil {
			return internal(op, err)
		}
		rec.RunID = run.ID
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return internal(op, err)
	}
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		var stored sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT version FROM ramps WHERE flag = ?`, r.Flag).Scan(&stored); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return internal(op, err)
		}
		switch {
		case r.Version == 0 && stored.Valid:
			return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.ECONFLICT, "flag %q already has a ramp", r.Flag))
		case r.Version > 0 && !stored.Valid:
			return fmt.Errorf("%s: %w", op, notFound("ramp", r.Flag))
		case r.Version > 0 && stored.Int64 != r.Version:
			return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.ECONFLICT,
				"ramp %q changed since it was read (version %d, stored %d)", r.Flag, r.Version, stored.Int64))
		}
		var err error
		if r.Version == 0 {
			_, err = tx.ExecContext(ctx, `INSERT INTO ramps (flag, phase, data, version) VALUES (?, ?, ?, 1)`, r.Flag, string(r.Phase), string(data))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE ramps SET phase = ?, data = ?, version = version + 1 WHERE flag = ?`, string(r.Phase), string(data), r.Flag)
		}
		if err != nil {
			return internal(op, err)
		}
		if runData != nil {
			res, err := tx.ExecContext(ctx, `INSERT INTO analysis_runs (id, rollout, flag, app, phase, started_at, data, version)
				VALUES (?, NULL, ?, '', ?, ?, ?, 1)
				ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, data = excluded.data, version = version + 1
				WHERE flag = excluded.flag`, r.Run.ID, r.Flag, string(r.Run.Phase), unixNanos(r.Run.StartedAt), string(runData))
			if err != nil {
				return internal(op, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.ECONFLICT, "analysis run %s belongs to something else", r.Run.ID))
			}
		}
		stamped := events
		if peer := slipway.PeerFrom(ctx); peer != "" {
			stamped = withPeer(peer, events)
		}
		seqs, times, err := s.writeEvents(ctx, tx.StmtContext(ctx, s.ws.eventInsert), stamped)
		if err != nil {
			return err
		}
		for i := range events {
			events[i].Seq, events[i].Time, events[i].Peer = seqs[i], times[i], stamped[i].Peer
		}
		r.Version++
		if r.Run != nil {
			r.RunID, r.Run.Flag = r.Run.ID, r.Flag
		} else {
			r.RunID = ""
		}
		return nil
	})
}

// DeleteRamp removes the ramp of flag key, if any.
func (s *Store) DeleteRamp(ctx context.Context, key string) error {
	op := "delete ramp " + key
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ramps WHERE flag = ?`, key); err != nil {
			return internal(op, err)
		}
		return nil
	})
}

// writeTx runs fn in one write transaction on the write connection, serialised with
// Commit's group commits.
func (s *Store) writeTx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	select {
	case s.wlock <- struct{}{}:
	case <-ctx.Done():
		return internal(op, ctx.Err())
	}
	defer func() { <-s.wlock }()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return internal(op, err)
	}
	s.wrote(1)
	return nil
}
