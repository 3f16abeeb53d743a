package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"slipway.dev/slipway"
)

var _ slipway.EnvironmentStore = (*Store)(nil)

// Environments lists the environments stored, by name.
func (s *Store) Environments(ctx context.Context) ([]slipway.Environment, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT data FROM environments ORDER BY name`)
	if err != nil {
		return nil, internal("list environments", err)
	}
	defer rows.Close()
	var out []slipway.Environment
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, internal("list environments", err)
		}
		var e slipway.Environment
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, internal("decode environment", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list environments", err)
	}
	return out, nil
}

// PutEnvironments creates or replaces envs and stores events, in one transaction.
func (s *Store) PutEnvironments(ctx context.Context, envs []slipway.Environment, events []slipway.Event) error {
	op := "write environments"
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		for _, e := range envs {
			data, err := json.Marshal(e)
			if err != nil {
				return internal(op, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO environments (name, data) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET data = excluded.data`, e.Name, string(data)); err != nil {
				return internal(op, err)
			}
		}
		if len(events) == 0 {
			return nil
		}
		_, _, err := s.writeEvents(ctx, tx.StmtContext(ctx, s.ws.eventInsert), withPeer(slipway.PeerFrom(ctx), events))
		return err
	})
}
