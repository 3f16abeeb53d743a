package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
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

// TestUpgrade_RampRunsMoveToTheirHome: a store whose ramps kept their analysis runs inside
// them (schema 0006), one of them RolledBack, opens with each run in analysis_runs, found by
// its ramp, by its ID and by its flag, and the ramp Aborted.
func TestUpgrade_RampRunsMoveToTheirHome(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slipway.db")
	db, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	old := fstest.MapFS{}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version <= 6 {
			old["migrations/"+m.name+".sql"] = &fstest.MapFile{Data: []byte(m.sql)}
		}
	}
	if err := migrate(ctx, db, old, time.Now); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 2, 10, 4, 5, 123456789, time.UTC)
	run := slipway.AnalysisRun{ID: "ramp-checkout-1-0", Kind: slipway.AnalysisRamp, Templates: []string{"errors"},
		Phase: slipway.VerdictRunning, StartedAt: started,
		Results: []slipway.MetricResult{{Name: "errors", Phase: slipway.VerdictRunning, Count: 2, Successful: 2}}}
	// The ramps as the build before this one wrote them: the run inside, the phase its own.
	for _, r := range []struct {
		flag, phase string
		run         *slipway.AnalysisRun
	}{{"checkout", "Progressing", &run}, {"search", "RolledBack", nil}} {
		doc := map[string]any{"flag": r.flag, "set": "shop", "phase": r.phase, "step": 0, "weight": 0, "startedAt": started, "updatedAt": started}
		if r.run != nil {
			doc["run"] = r.run
		}
		data, _ := json.Marshal(doc)
		if _, err := db.Exec(`INSERT INTO ramps (flag, phase, data, version) VALUES (?, ?, ?, 3)`, r.flag, r.phase, string(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, time.Now)
	if err != nil {
		t.Fatalf("open after the upgrade: %v", err)
	}
	defer s.Close()
	r, err := s.Ramp(ctx, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if r.Run == nil || r.RunID != run.ID || r.Run.ID != run.ID || r.Run.Flag != "checkout" || r.Version != 3 ||
		len(r.Run.Results) != 1 || r.Run.Results[0].Successful != 2 || !r.Run.StartedAt.Equal(started) {
		t.Fatalf("ramp after the upgrade: %+v, run %+v", r, r.Run)
	}
	if got, err := s.AnalysisRun(ctx, run.ID); err != nil || got.Flag != "checkout" {
		t.Fatalf("the run by its ID: %+v, %v", got, err)
	}
	if runs, err := s.FlagAnalysisRuns(ctx, "checkout"); err != nil || len(runs) != 1 {
		t.Fatalf("the flag's runs: %d, %v", len(runs), err)
	}
	search, err := s.Ramp(ctx, "search")
	if err != nil || search.Phase != slipway.PhaseAborted || search.Run != nil {
		t.Fatalf("the rolled back ramp: %+v, %v; want Aborted without a run", search, err)
	}
	// The ramp moves on with its run where it now lives.
	r.Run.Phase = slipway.VerdictSuccessful
	if err := s.SaveRamp(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AnalysisRun(ctx, run.ID); got.Phase != slipway.VerdictSuccessful {
		t.Fatalf("the run after the ramp saved it: %s", got.Phase)
	}
	if runs, _ := s.AnalysisRuns(ctx, "checkout"); len(runs) != 0 {
		t.Fatalf("a flag's run listed as a rollout's: %+v", runs)
	}
}
