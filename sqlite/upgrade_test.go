package sqlite

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// openFixture opens a copy of a data directory's store kept in testdata/upgrade.
func openFixture(t *testing.T, name string) *Store {
	t.Helper()
	src, err := os.Open(filepath.Join("testdata", "upgrade", name, "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "slipway.db")
	dst, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, time.Now)
	if err != nil {
		t.Fatalf("open the %s store: %v", name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestUpgrade_PreEnvironmentsStoreKeepsEverything opens a store written by the build before
// environments (testdata/upgrade/pre-environments) and finds every record it held.
func TestUpgrade_PreEnvironmentsStoreKeepsEverything(t *testing.T) {
	s := openFixture(t, "pre-environments")
	ctx := context.Background()
	apps, err := s.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]slipway.AppState{}
	for _, a := range apps {
		names[a.Spec.Name] = a
	}
	if len(apps) != 2 || names["catalog"].Stable == "" || names["billing-api"].Stable == "" {
		t.Fatalf("apps %v: want catalog and billing-api, each with a stable revision", names)
	}
	for app, want := range map[string]int{"catalog": 2, "billing-api": 1} {
		rs, err := s.Rollouts(ctx, app, 0)
		if err != nil || len(rs) != want {
			t.Errorf("rollouts of %s: %d, %v; want %d", app, len(rs), err, want)
		}
		for _, r := range rs {
			if r.Phase != slipway.PhaseCompleted {
				t.Errorf("rollout %s is %s, want Completed", r.ID, r.Phase)
			}
		}
		revs, err := s.Revisions(ctx, app)
		if err != nil || len(revs) != want {
			t.Errorf("revisions of %s: %d, %v; want %d", app, len(revs), err, want)
		}
	}
	sets, err := s.FlagSets(ctx)
	if err != nil || len(sets) != 1 || sets[0].Set.ID != "shop" || len(sets[0].Set.Flags) != 3 {
		t.Errorf("flag sets %+v, %v: want shop with 3 flags", sets, err)
	}
	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 2 {
		t.Errorf("tokens %+v, %v: want local-admin and ci", toks, err)
	}
	evs, err := s.Events(ctx, slipway.EventFilter{})
	if err != nil || len(evs) != 22 {
		t.Errorf("events: %d, %v; want 22", len(evs), err)
	}
	// The upgraded store takes new writes.
	next := names["catalog"]
	next.Spec.Replicas++
	if err := s.Commit(ctx, &slipway.Change{Apps: []slipway.AppState{next}}); err != nil {
		t.Errorf("commit to the upgraded store: %v", err)
	}
}
