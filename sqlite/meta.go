package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"slipway.dev/slipway"
)

// ID returns the store's id: made once when the store is created, and kept by every copy
// and backup of it, so that a data directory can tell its own store from another.
func (s *Store) ID(ctx context.Context) (string, error) {
	var id string
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'store_id'`).Scan(&id); err != nil {
		return "", internal("read the store id", err)
	}
	return id, nil
}

// Ping checks that the store can write: it writes the time of the check. A full or
// read-only disk gives EUNAVAILABLE with the reason in words.
func (s *Store) Ping(ctx context.Context) error {
	return s.writeTx(ctx, "health check", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('health', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, formatTime(s.now()))
		if err != nil {
			return internal("health check", err)
		}
		return nil
	})
}

// Backup writes a consistent copy of the store to w, while the store stays in use: SQLite
// copies one read transaction's view into a file beside the store (VACUUM INTO), which is
// then streamed and removed. The copy is a store of its own: open it with Open.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, ".backup-*.db")
	if err != nil {
		return internal("backup", err)
	}
	tmp := f.Name()
	_ = f.Close()
	_ = os.Remove(tmp) // VACUUM INTO wants a file that does not exist
	defer func() { _ = os.Remove(tmp) }()
	if strings.ContainsRune(tmp, '\'') {
		return internal("backup", fmt.Errorf("temporary path %q has a quote", tmp))
	}
	// A connection of its own: the readers may not write, and the writer must not wait.
	db, err := sql.Open("sqlite", s.path+fmt.Sprintf("?_busy_timeout=%d", busyTimeoutMillis))
	if err != nil {
		return internal("backup", err)
	}
	// VACUUM INTO takes no parameter; tmp is a name this function made, checked for quotes.
	_, err = db.ExecContext(ctx, `VACUUM INTO '`+tmp+`'`) //nolint:gosec // see above
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return internal("backup", err)
	}
	src, err := os.Open(tmp)
	if err != nil {
		return internal("backup", err)
	}
	defer src.Close()
	if _, err := io.Copy(w, src); err != nil {
		return fmt.Errorf("backup: write the copy: %w", err)
	}
	return nil
}

// check runs SQLite's quick integrity check; a damaged file is an error that says so.
func check(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("store %s cannot be read (%w); restore it from a backup (docs/operations.md)", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return internal("integrity check", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store %s cannot be read (%w); restore it from a backup (docs/operations.md)", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store %s is damaged (%s); restore it from a backup (docs/operations.md)", path, strings.Join(problems[:min(3, len(problems))], "; "))
	}
	return nil
}

// Meta returns the value stored under key by PutMeta; "" when none.
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaPrefix+key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", internal("read "+key, err)
	}
	return v, nil
}

// PutMeta stores value under key, and events, in one transaction.
func (s *Store) PutMeta(ctx context.Context, key, value string, events ...slipway.Event) error {
	op := "write " + key
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, metaPrefix+key, value)
		if err != nil {
			return internal(op, err)
		}
		return s.writeTxEvents(ctx, tx, events)
	})
}

// metaPrefix keeps the keys of PutMeta apart from the store's own (store_id, health).
const metaPrefix = "x."
