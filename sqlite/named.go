package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"slipway.dev/slipway"
)

// Environments, pipelines and notifications are kept the same way: one row per name, the
// document whole as JSON. The table names below are this package's constants.

// listNamed returns every document of table, by name.
func listNamed[T any](ctx context.Context, s *Store, table, what string) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT data FROM `+table+` ORDER BY name`) //nolint:gosec // table is a constant of this package
	if err != nil {
		return nil, internal("list "+what, err)
	}
	out, err := collect(rows, func(sc scanner) (T, error) {
		var data string
		var v T
		if err := sc.Scan(&data); err != nil {
			return v, err
		}
		return v, json.Unmarshal([]byte(data), &v)
	})
	if err != nil {
		return nil, internal("list "+what, err)
	}
	return out, nil
}

// putNamed creates or replaces docs in table, each under name(doc), and stores events, in
// one transaction.
func putNamed[T any](ctx context.Context, s *Store, table, what string, docs []T, name func(T) string, events []slipway.Event) error {
	op := "write " + what
	upsert := `INSERT INTO ` + table + ` (name, data) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET data = excluded.data` //nolint:gosec // table is a constant of this package
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		for _, d := range docs {
			data, err := json.Marshal(d)
			if err != nil {
				return internal(op, err)
			}
			if _, err := tx.ExecContext(ctx, upsert, name(d), string(data)); err != nil {
				return internal(op, err)
			}
		}
		return s.writeTxEvents(ctx, tx, events)
	})
}
