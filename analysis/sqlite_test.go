package analysis

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/sqlite"

	"slipway.dev/slipway/slipwaytest"
)

// openStore opens the SQLite store at path and closes it at the end of the test.
func openStore(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(path, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// seedRun stores the app and rollout run belongs to, and run itself.
func seedRun(tb testing.TB, s slipway.Store, run slipway.AnalysisRun) {
	tb.Helper()
	now := time.Now()
	c := &slipway.Change{
		Apps: []slipway.AppState{{Spec: slipway.App{
			Name: run.App, Replicas: 1, Run: slipway.RunSpec{Command: "/bin/true"},
			Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{}},
		}, CreatedAt: now, UpdatedAt: now}},
		Rollouts: []slipway.Rollout{{
			ID: run.Rollout, App: run.App, Number: 1, To: "bbb222", Strategy: slipway.StrategyCanary,
			Phase: slipway.PhaseProgressing, CreatedAt: now, UpdatedAt: now,
		}},
		Runs: []slipway.AnalysisRun{run},
	}
	if err := s.Commit(context.Background(), c); err != nil {
		tb.Fatal(err)
	}
}

func TestRunner_ResumesAfterRestart(t *testing.T) {
	const count = 6
	path := filepath.Join(t.TempDir(), "slipway.db")
	srv, hits := rateServer(t, 0.01)
	run := testRun(rateMetric(srv.URL, count, 10*time.Millisecond))
	run.StartedAt = time.Now()

	first := openStore(t, path)
	seedRun(t, first, run)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewRunner(Config{Store: first, Providers: providers()}).Execute(ctx, run.ID, nil) }()
	slipwaytest.Eventually(t, 15*time.Second, "3 measurements", func() bool { return storedRun(t, first, run.ID).Results[0].Count >= 3 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first Execute = %v, want context.Canceled", err)
	}
	before := storedRun(t, first, run.ID).Results[0].Count
	if before >= count {
		t.Fatalf("the run finished (%d measurements) before the restart; nothing left to resume", before)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := openStore(t, path)
	if err := NewRunner(Config{Store: second, Providers: providers()}).Execute(context.Background(), run.ID, nil); err != nil {
		t.Fatal(err)
	}
	got := storedRun(t, second, run.ID)
	if got.Phase != slipway.VerdictSuccessful || got.FinishedAt == nil {
		t.Fatalf("run = %s (%s), want Successful", got.Phase, got.Message)
	}
	res := got.Results[0]
	if res.Count != count || len(res.Measurements) != count {
		t.Fatalf("count %d, kept %d after a restart at %d, want %d", res.Count, len(res.Measurements), before, count)
	}
	checkSequence(t, res)
	// At most the one measurement cut short by the shutdown was asked for and not recorded.
	if hits.Load() < count || hits.Load() > count+1 {
		t.Errorf("%d requests for %d measurements", hits.Load(), count)
	}
	evs, err := second.Events(context.Background(), slipway.EventFilter{Rollout: run.Rollout})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
	}
	if kinds[slipway.EventMeasurement] != count || kinds[slipway.EventAnalysisFinished] != 1 {
		t.Errorf("events = %v, want %d measurements and 1 finished", kinds, count)
	}
}

func TestRunner_SQLiteTerminatedByEngine(t *testing.T) {
	srv, _ := rateServer(t, 0.01)
	run := testRun(rateMetric(srv.URL, 0, 2*time.Millisecond))
	run.Kind = slipway.AnalysisBackground
	run.StartedAt = time.Now()
	s := openStore(t, filepath.Join(t.TempDir(), "slipway.db"))
	seedRun(t, s, run)
	done := make(chan error, 1)
	go func() {
		done <- NewRunner(Config{Store: s, Providers: providers()}).Execute(context.Background(), run.ID, nil)
	}()
	slipwaytest.Eventually(t, 15*time.Second, "2 measurements", func() bool { return storedRun(t, s, run.ID).Results[0].Count >= 2 })

	// The engine terminates the run, retrying on its own conflicts with the runner.
	for {
		cur := storedRun(t, s, run.ID)
		Terminate(&cur, "rollout completed", time.Now())
		err := s.Commit(context.Background(), &slipway.Change{Runs: []slipway.AnalysisRun{cur}})
		if err == nil {
			break
		}
		if slipway.ErrorCode(err) != slipway.ECONFLICT {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Execute = %v, want nil once terminated", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Execute did not return after the run was terminated")
	}
	got := storedRun(t, s, run.ID)
	if got.Phase != slipway.VerdictTerminated || got.Message != "rollout completed" {
		t.Fatalf("run = %s %q", got.Phase, got.Message)
	}
	checkSequence(t, got.Results[0])
}
