package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"slipway.dev/slipway"
)

var _ slipway.FlagStore = (*Store)(nil)

// writeFlagSets runs a Change's flag set deletions, then its flag set writes, in tx. It
// returns the version written for each of c.FlagSets.
func (s *Store) writeFlagSets(ctx context.Context, tx *sql.Tx, c *slipway.Change) ([]int64, error) {
	for _, id := range c.DeleteFlagSets {
		r, err := tx.ExecContext(ctx, `DELETE FROM flag_sets WHERE id = ?`, id)
		if err != nil {
			return nil, internal("delete flag set "+id, err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return nil, internal("delete flag set "+id, err)
		} else if n == 0 {
			return nil, fmt.Errorf("delete flag set %s: %w", id, notFound("flag set", id))
		}
	}
	out := make([]int64, len(c.FlagSets))
	for i, rec := range c.FlagSets {
		v, err := s.writeFlagSet(ctx, tx, rec)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// writeFlagSet writes one new version of a set and returns it.
func (s *Store) writeFlagSet(ctx context.Context, tx *sql.Tx, rec slipway.FlagSetRecord) (int64, error) {
	id, read := rec.Set.ID, rec.Set.Revision
	op := "write flag set " + id
	if id == "" {
		return 0, fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.EINVALID, "a flag set needs an ID"))
	}
	if read < 0 {
		return 0, fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.EINVALID, "flag set %q has negative version %d", id, read))
	}
	var stored sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM flag_sets WHERE id = ?`, id).Scan(&stored); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, internal(op, err)
	}
	switch {
	case read == 0 && stored.Valid:
		return 0, fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.ECONFLICT, "flag set %q already exists", id))
	case read > 0 && !stored.Valid:
		return 0, fmt.Errorf("%s: %w", op, notFound("flag set", id))
	case read > 0 && stored.Int64 != read:
		return 0, fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.ECONFLICT,
			"flag set %q changed since it was read (version %d, stored %d)", id, read, stored.Int64))
	}
	next := read + 1
	if read == 0 {
		// A set created again continues the numbering of its kept versions.
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM flag_versions WHERE set_id = ?`, id).Scan(&last); err != nil {
			return 0, internal(op, err)
		}
		next = last.Int64 + 1
	}
	fs := rec.Set
	fs.Revision = next
	data, err := json.Marshal(fs)
	if err != nil {
		return 0, internal("encode flag set "+id, err)
	}
	t := rec.Time
	if t.IsZero() {
		t = s.now()
	}
	at := formatTime(t)
	if read == 0 {
		_, err = tx.ExecContext(ctx, `INSERT INTO flag_sets (id, version, data, updated, actor, reason) VALUES (?, ?, ?, ?, ?, ?)`,
			id, next, string(data), at, rec.Actor, rec.Reason)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE flag_sets SET version = ?, data = ?, updated = ?, actor = ?, reason = ? WHERE id = ?`,
			next, string(data), at, rec.Actor, rec.Reason, id)
	}
	if err != nil {
		return 0, internal(op, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO flag_versions (set_id, version, data, time, actor, reason) VALUES (?, ?, ?, ?, ?, ?)`,
		id, next, string(data), at, rec.Actor, rec.Reason); err != nil {
		return 0, internal(op, err)
	}
	return next, nil
}

// FlagSets returns the current version of every stored flag set, by ID.
func (s *Store) FlagSets(ctx context.Context) ([]slipway.FlagSetRecord, error) {
	return s.flagRecords(ctx, "read flag sets", `SELECT data, updated, actor, reason FROM flag_sets ORDER BY id`)
}

// FlagSet returns the current version of set id, or ENOTFOUND.
func (s *Store) FlagSet(ctx context.Context, id string) (slipway.FlagSetRecord, error) {
	recs, err := s.flagRecords(ctx, "read flag set "+id, `SELECT data, updated, actor, reason FROM flag_sets WHERE id = ?`, id)
	if err != nil {
		return slipway.FlagSetRecord{}, err
	}
	if len(recs) == 0 {
		return slipway.FlagSetRecord{}, notFound("flag set", id)
	}
	return recs[0], nil
}

// FlagSetHistory returns every kept version of set id, newest first, or ENOTFOUND.
func (s *Store) FlagSetHistory(ctx context.Context, id string) ([]slipway.FlagSetRecord, error) {
	recs, err := s.flagRecords(ctx, "read flag set history "+id,
		`SELECT data, time, actor, reason FROM flag_versions WHERE set_id = ? ORDER BY version DESC`, id)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, notFound("flag set", id)
	}
	return recs, nil
}

func (s *Store) flagRecords(ctx context.Context, op, q string, args ...any) ([]slipway.FlagSetRecord, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []slipway.FlagSetRecord
	for rows.Next() {
		var data, at string
		var rec slipway.FlagSetRecord
		if err := rows.Scan(&data, &at, &rec.Actor, &rec.Reason); err != nil {
			return nil, internal(op, err)
		}
		if err := json.Unmarshal([]byte(data), &rec.Set); err != nil {
			return nil, internal(op, err)
		}
		if rec.Time, err = parseTime(at); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// FlagStats returns the evaluation statistics of every flag ever evaluated, by key.
func (s *Store) FlagStats(ctx context.Context) ([]slipway.FlagStat, error) {
	const op = "read flag stats"
	rows, err := s.r.QueryContext(ctx, `SELECT key, last_evaluated, last_variant, single_since, evaluations FROM flag_stats ORDER BY key`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []slipway.FlagStat
	for rows.Next() {
		var st slipway.FlagStat
		var last, since string
		if err := rows.Scan(&st.Key, &last, &st.LastVariant, &since, &st.Evaluations); err != nil {
			return nil, internal(op, err)
		}
		if st.LastEvaluated, err = parseTime(last); err != nil {
			return nil, internal(op, err)
		}
		if since != "" {
			if st.SingleVariantSince, err = parseTime(since); err != nil {
				return nil, internal(op, err)
			}
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// SaveFlagStats replaces the statistics of the flags in stats, in one transaction.
func (s *Store) SaveFlagStats(ctx context.Context, stats []slipway.FlagStat) error {
	const op = "write flag stats"
	if len(stats) == 0 {
		return nil
	}
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
	for _, st := range stats {
		since := ""
		if !st.SingleVariantSince.IsZero() {
			since = formatTime(st.SingleVariantSince)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO flag_stats (key, last_evaluated, last_variant, single_since, evaluations)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET last_evaluated = excluded.last_evaluated,
			last_variant = excluded.last_variant, single_since = excluded.single_since, evaluations = excluded.evaluations`,
			st.Key, formatTime(st.LastEvaluated), st.LastVariant, since, st.Evaluations); err != nil {
			_ = tx.Rollback()
			return internal(op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return internal(op, err)
	}
	s.wrote(len(stats))
	return nil
}
