package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway"
)

func TestStore_BackupIsAConsistentCopy(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{testApp("web"), testApp("api")},
		Events: []slipway.Event{{Kind: "test", Message: "before the backup"}}})
	var b bytes.Buffer
	if err := s.Backup(ctx, &b); err != nil {
		t.Fatal(err)
	}
	commit(t, s, &slipway.Change{Apps: []slipway.AppState{testApp("after")}})
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	apps, err := r.Apps(ctx)
	if err != nil || len(apps) != 2 {
		t.Fatalf("apps in the backup: %d, %v; want web and api", len(apps), err)
	}
	id, _ := s.ID(ctx)
	rid, err := r.ID(ctx)
	if err != nil || rid != id || len(id) != 32 {
		t.Errorf("backup's id %q (%v), store's %q: a backup keeps the store's id", rid, err, id)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(s.Path()), ".backup-*")); len(matches) != 0 {
		t.Errorf("backup left %v behind", matches)
	}
}

func TestOpen_RefusesADamagedStore(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "slipway.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var apps []slipway.AppState
	for i := range 200 {
		apps = append(apps, testApp(fmt.Sprintf("app-%03d", i)))
	}
	commit(t, s, &slipway.Change{Apps: apps})
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 16*4096 {
		t.Fatalf("store of %d bytes is too small to damage in its middle", len(b))
	}
	// Overwrite pages in the middle, as a bad disk or a stray write would.
	for i := 8 * 4096; i < 12*4096; i++ {
		b[i] = 0xA5
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, nil)
	if err == nil || (!strings.Contains(err.Error(), "damaged") && !strings.Contains(err.Error(), "cannot be read")) {
		t.Fatalf("Open of a damaged store: %v; want it refused as damaged", err)
	}
}

func TestStore_WriteFailuresSayWhy(t *testing.T) {
	ctx := context.Background()
	t.Run("full", func(t *testing.T) {
		s := openTest(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		// The file may not grow: SQLite answers as it does on a full disk.
		if _, err := s.w.ExecContext(ctx, `PRAGMA max_page_count = 1`); err != nil {
			t.Fatal(err)
		}
		var apps []slipway.AppState
		for i := range 100 {
			apps = append(apps, testApp(fmt.Sprintf("app-%03d", i)))
		}
		err := s.Commit(ctx, &slipway.Change{Apps: apps})
		wantCode(t, err, slipway.EUNAVAILABLE)
		if !strings.Contains(slipway.ErrorMessage(err), "the disk is full") {
			t.Errorf("message %q", slipway.ErrorMessage(err))
		}
	})
	t.Run("read-only", func(t *testing.T) {
		s := openTest(t)
		if _, err := s.w.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
			t.Fatal(err)
		}
		err := s.Ping(ctx)
		wantCode(t, err, slipway.EUNAVAILABLE)
		if !strings.Contains(slipway.ErrorMessage(err), "read-only") {
			t.Errorf("message %q", slipway.ErrorMessage(err))
		}
	})
}

// TestStore_MetaKeepsValuesWithTheirEvents: PutMeta stores a value and its events in one
// transaction; the keys are kept apart from the store's own (store_id).
func TestStore_MetaKeepsValuesWithTheirEvents(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if v, err := s.Meta(ctx, "store_id"); err != nil || v != "" {
		t.Errorf("Meta(store_id) = %q, %v; want none (the store's own keys are not PutMeta's)", v, err)
	}
	if err := s.PutMeta(ctx, "gitsource", "one", slipway.Event{Kind: "git.applied", Message: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta(ctx, "gitsource", "two"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Meta(ctx, "gitsource"); err != nil || v != "two" {
		t.Errorf("Meta = %q, %v; want two", v, err)
	}
	evs, err := s.Events(ctx, slipway.EventFilter{})
	if err != nil || len(evs) != 1 || evs[0].Message != "first" {
		t.Errorf("events: %+v, %v", evs, err)
	}
	id, _ := s.ID(ctx)
	if len(id) != 32 {
		t.Errorf("store id %q changed", id)
	}
}
