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

var _ slipway.TokenStore = (*Store)(nil)

// InsertToken stores t under the hash of its secret, with ev, in one transaction; ECONFLICT
// when a token of that name (or, against all odds, that hash) exists.
func (s *Store) InsertToken(ctx context.Context, t slipway.Token, hash []byte, ev slipway.Event) error {
	op := "write token " + t.Name
	data, err := json.Marshal(t)
	if err != nil {
		return internal(op, err)
	}
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE name = ? OR hash = ?`, t.Name, hash).Scan(&n); err != nil {
			return internal(op, err)
		}
		if n > 0 {
			return fmt.Errorf("%s: %w", op, slipway.Errorf(slipway.ECONFLICT, "a token named %q exists; revoked tokens keep their names", t.Name))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (name, hash, role, data) VALUES (?, ?, ?, ?)`,
			t.Name, hash, string(t.Role), string(data)); err != nil {
			return internal(op, err)
		}
		return s.writeTxEvents(ctx, tx, []slipway.Event{ev})
	})
}

// TokenByHash returns the token stored under hash, revoked or not; ENOTFOUND when none.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (slipway.Token, error) {
	var data string
	var revoked sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT data, revoked_at FROM tokens WHERE hash = ?`, hash).Scan(&data, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return slipway.Token{}, slipway.Errorf(slipway.ENOTFOUND, "no such token")
	}
	if err != nil {
		return slipway.Token{}, internal("read token", err)
	}
	return decodeToken(data, revoked)
}

// Tokens lists every token by name.
func (s *Store) Tokens(ctx context.Context) ([]slipway.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT data, revoked_at FROM tokens ORDER BY name`)
	if err != nil {
		return nil, internal("list tokens", err)
	}
	defer rows.Close()
	var out []slipway.Token
	for rows.Next() {
		var data string
		var revoked sql.NullString
		if err := rows.Scan(&data, &revoked); err != nil {
			return nil, internal("list tokens", err)
		}
		t, err := decodeToken(data, revoked)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list tokens", err)
	}
	return out, nil
}

// RevokeToken marks the named token revoked at `at` (keeping an earlier revocation) and
// stores ev, in one transaction; ENOTFOUND when there is no such token.
func (s *Store) RevokeToken(ctx context.Context, name string, at time.Time, ev slipway.Event) (slipway.Token, error) {
	op := "revoke token " + name
	var t slipway.Token
	err := s.writeTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`, formatTime(at), name); err != nil {
			return internal(op, err)
		}
		var data string
		var revoked sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT data, revoked_at FROM tokens WHERE name = ?`, name).Scan(&data, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w", op, notFound("token", name))
		}
		if err != nil {
			return internal(op, err)
		}
		if t, err = decodeToken(data, revoked); err != nil {
			return err
		}
		return s.writeTxEvents(ctx, tx, []slipway.Event{ev})
	})
	return t, err
}

func decodeToken(data string, revoked sql.NullString) (slipway.Token, error) {
	var t slipway.Token
	if err := json.Unmarshal([]byte(data), &t); err != nil {
		return t, internal("decode token", err)
	}
	t.RevokedAt = nil
	if revoked.Valid {
		at, err := parseTime(revoked.String)
		if err != nil {
			return t, internal("decode token", err)
		}
		t.RevokedAt = &at
	}
	return t, nil
}
