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

// Ramps returns every stored ramp, by flag key.
func (s *Store) Ramps(ctx context.Context) ([]slipway.Ramp, error) {
	const op = "read ramps"
	rows, err := s.r.QueryContext(ctx, `SELECT data, version FROM ramps ORDER BY flag`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []slipway.Ramp
	for rows.Next() {
		var data string
		var r slipway.Ramp
		var v int64
		if err := rows.Scan(&data, &v); err != nil {
			return nil, internal(op, err)
		}
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, internal(op, err)
		}
		r.Version = v
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// Ramp returns the ramp of flag key, or ENOTFOUND.
func (s *Store) Ramp(ctx context.Context, key string) (slipway.Ramp, error) {
	op := "read ramp " + key
	var data string
	var r slipway.Ramp
	var v int64
	err := s.r.QueryRowContext(ctx, `SELECT data, version FROM ramps WHERE flag = ?`, key).Scan(&data, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return slipway.Ramp{}, notFound("ramp", key)
	}
	if err != nil {
		return slipway.Ramp{}, internal(op, err)
	}
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return slipway.Ramp{}, internal(op, err)
	}
	r.Version = v
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
	rec := *r
	rec.Version = 0
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
