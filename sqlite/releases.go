package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"slipway.dev/slipway"
)

var _ slipway.ReleaseStore = (*Store)(nil)

// Pipelines lists the pipelines, by name.
func (s *Store) Pipelines(ctx context.Context) ([]slipway.Pipeline, error) {
	return listNamed[slipway.Pipeline](ctx, s, "pipelines", "pipelines")
}

// PutPipelines creates or replaces ps and stores events, in one transaction.
func (s *Store) PutPipelines(ctx context.Context, ps []slipway.Pipeline, events []slipway.Event) error {
	return putNamed(ctx, s, "pipelines", "pipelines", ps, func(p slipway.Pipeline) string { return p.Name }, events)
}

// CreateRelease stores r with the next number of its app, setting its Number, ID
// (APP-r-NUMBER) and Generation, and events, in one transaction.
func (s *Store) CreateRelease(ctx context.Context, r *slipway.Release, events ...slipway.Event) error {
	op := "create release of " + r.App
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE app = ?`, r.App).Scan(&n); err != nil {
			return internal(op, err)
		}
		rec := *r
		rec.Number, rec.ID, rec.Generation = n, fmt.Sprintf("%s-r%d", r.App, n), 0
		data, err := json.Marshal(rec)
		if err != nil {
			return internal(op, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases (id, app, number, phase, created_at, data, version) VALUES (?, ?, ?, ?, ?, ?, 1)`,
			rec.ID, rec.App, n, string(rec.Phase), unixNanos(rec.CreatedAt), string(data)); err != nil {
			return internal(op, err)
		}
		for i := range events {
			if events[i].Rollout == "" && events[i].App == r.App {
				events[i].Message = fmt.Sprintf("release %s: %s", rec.ID, events[i].Message)
			}
		}
		if err := s.writeTxEvents(ctx, tx, events); err != nil {
			return err
		}
		r.Number, r.ID, r.Generation = n, rec.ID, 1
		return nil
	})
}

// SaveRelease writes r and events in one transaction if r.Generation is the stored one
// (ECONFLICT otherwise; ENOTFOUND when there is none), and sets r.Generation to the new one.
func (s *Store) SaveRelease(ctx context.Context, r *slipway.Release, events ...slipway.Event) error {
	op := "write release " + r.ID
	rec := *r
	rec.Generation = 0
	data, err := json.Marshal(rec)
	if err != nil {
		return internal(op, err)
	}
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE releases SET phase = ?, data = ?, version = version + 1 WHERE id = ? AND version = ?`,
			string(r.Phase), string(data), r.ID, r.Generation)
		if err != nil {
			return internal(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return internal(op, err)
		} else if n == 0 {
			var v int64
			err := tx.QueryRowContext(ctx, `SELECT version FROM releases WHERE id = ?`, r.ID).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%s: %w", op, notFound("release", r.ID))
			}
			if err != nil {
				return internal(op, err)
			}
			return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.ECONFLICT,
				"release %s changed since it was read (generation %d, stored %d)", r.ID, r.Generation, v))
		}
		if err := s.writeTxEvents(ctx, tx, events); err != nil {
			return err
		}
		r.Generation++
		return nil
	})
}

// Release returns release id, or ENOTFOUND.
func (s *Store) Release(ctx context.Context, id string) (slipway.Release, error) {
	r, err := scanRelease(s.r.QueryRowContext(ctx, `SELECT data, version FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("release", id)
	}
	if err != nil {
		return r, internal("read release "+id, err)
	}
	return r, nil
}

// Releases lists releases newest first, of app when app is not "", at most limit (all when
// limit <= 0).
func (s *Store) Releases(ctx context.Context, app string, limit int) ([]slipway.Release, error) {
	if limit <= 0 {
		limit = -1
	}
	q := `SELECT data, version FROM releases ORDER BY created_at DESC, app, number DESC LIMIT ?`
	args := []any{limit}
	if app != "" {
		q = `SELECT data, version FROM releases WHERE app = ? ORDER BY number DESC LIMIT ?`
		args = []any{app, limit}
	}
	return s.queryReleases(ctx, "list releases", q, args...)
}

// ActiveReleases lists the releases still Progressing, oldest first.
func (s *Store) ActiveReleases(ctx context.Context) ([]slipway.Release, error) {
	return s.queryReleases(ctx, "list active releases",
		`SELECT data, version FROM releases WHERE phase = ? ORDER BY created_at, app, number`, string(slipway.PhaseProgressing))
}

func (s *Store) queryReleases(ctx context.Context, op, q string, args ...any) ([]slipway.Release, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []slipway.Release
	for rows.Next() {
		r, err := scanRelease(rows)
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

func scanRelease(sc scanner) (slipway.Release, error) {
	var data string
	var v int64
	if err := sc.Scan(&data, &v); err != nil {
		return slipway.Release{}, err
	}
	var r slipway.Release
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return slipway.Release{}, err
	}
	r.Generation = v
	return r, nil
}

// SeenDelivery records webhook delivery id and reports whether it was recorded before.
// Deliveries older than a week are forgotten.
func (s *Store) SeenDelivery(ctx context.Context, id string, at time.Time) (bool, error) {
	const op = "record webhook delivery"
	seen := false
	err := s.writeTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE received_at < ?`, unixNanos(at.Add(-7*24*time.Hour))); err != nil {
			return internal(op, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, received_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, unixNanos(at))
		if err != nil {
			return internal(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return internal(op, err)
		}
		seen = n == 0
		return nil
	})
	return seen, err
}

// ForgetDelivery removes webhook delivery id, recorded by SeenDelivery.
func (s *Store) ForgetDelivery(ctx context.Context, id string) error {
	const op = "forget webhook delivery"
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id = ?`, id); err != nil {
			return internal(op, err)
		}
		return nil
	})
}
