package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"slipway.dev/slipway"
)

func TestMigrate_EmptyFileGetsSchema(t *testing.T) {
	s := openTest(t)
	rows, err := s.r.Query(`SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"analysis_runs", "analysis_runs_rollout", "apps", "events", "events_app", "events_rollout",
		"revisions", "revisions_app_number", "rollouts", "rollouts_active", "rollouts_app_number",
		"schema_migrations", "templates",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("schema lacks %s (has %v)", want, names)
		}
	}

	var mode string
	if err := s.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk, sync int
	if err := s.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if err := s.w.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
		t.Errorf("synchronous = %d, %v; want 1 (NORMAL)", sync, err)
	}
	var busy int
	if err := s.r.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != busyTimeoutMillis {
		t.Errorf("reader busy_timeout = %d, %v; want %d", busy, err, busyTimeoutMillis)
	}
}

func TestMigrate_AppliesOnlyMissing(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1)

	// Without IF NOT EXISTS, running a migration twice fails: the test sees any re-run.
	v1 := fstest.MapFS{
		"migrations/0001_first.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)},
	}
	v2 := fstest.MapFS{
		"migrations/0001_first.sql":  v1["migrations/0001_first.sql"],
		"migrations/0002_second.sql": {Data: []byte(`CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);`)},
	}
	clk := newClock(t0)
	if err := migrate(ctx, db, v1, clk.Now); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Hour))
	if err := migrate(ctx, db, v2, clk.Now); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	clk.Set(t0.Add(2 * time.Hour))
	if err := migrate(ctx, db, v2, clk.Now); err != nil {
		t.Fatalf("third migrate: %v", err)
	}

	var got []string
	rows, err := db.Query(`SELECT name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, at string
		if err := rows.Scan(&n, &at); err != nil {
			t.Fatal(err)
		}
		got = append(got, n+" "+at)
	}
	_ = rows.Close()
	assertEqual(t, "applied", got, []string{
		"0001_first " + formatTime(t0),
		"0002_second " + formatTime(t0.Add(time.Hour)),
	})
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM a`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows in a = %d, %v; want 1 (0002 applied once)", n, err)
	}

	// A database from a newer slipway is refused.
	err = migrate(ctx, db, v1, clk.Now)
	wantCode(t, err, slipway.EINTERNAL)

	// A failing migration leaves nothing of itself behind.
	bad := fstest.MapFS{
		"migrations/0001_first.sql":  v2["migrations/0001_first.sql"],
		"migrations/0002_second.sql": v2["migrations/0002_second.sql"],
		"migrations/0003_bad.sql":    {Data: []byte(`CREATE TABLE c (z INTEGER); SELECT nonsense FROM nowhere;`)},
	}
	if err := migrate(ctx, db, bad, clk.Now); err == nil {
		t.Fatal("a failing migration reported success")
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'c'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed migration left table c behind (%d, %v)", n, err)
	}
}

func TestLoadMigrations_RejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number": {"migrations/init.sql": {Data: []byte("SELECT 1;")}},
		"zero":      {"migrations/0000_init.sql": {Data: []byte("SELECT 1;")}},
		"duplicate": {
			"migrations/0001_a.sql": {Data: []byte("SELECT 1;")},
			"migrations/001_b.sql":  {Data: []byte("SELECT 1;")},
		},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil || len(ms) == 0 || ms[0].name != "0001_init" {
		t.Fatalf("embedded migrations = %+v, %v", ms, err)
	}
}
