package analysis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/metric/job"
	"slipway.dev/slipway/metric/web"

	"slipway.dev/slipway/slipwaytest"
)

// rateServer serves {"rate": rate} and counts the requests it answered.
func rateServer(tb testing.TB, rate float64) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, `{"rate": %g}`, rate)
	}))
	tb.Cleanup(srv.Close)
	return srv, &hits
}

func providers() map[string]slipway.Provider {
	return map[string]slipway.Provider{"web": web.New(nil), "job": job.New()}
}

func rateMetric(url string, count int, interval time.Duration) slipway.Metric {
	return slipway.Metric{
		Name:             "errors",
		Provider:         slipway.ProviderSpec{Web: &slipway.WebMetric{URL: url, JSONPath: "$.rate"}},
		Count:            count,
		Interval:         slipway.Duration(interval),
		SuccessCondition: "result < 0.05",
	}
}

func storedRun(tb testing.TB, s slipway.Store, id string) slipway.AnalysisRun {
	tb.Helper()
	run, err := s.AnalysisRun(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return run
}

func eventKinds(tb testing.TB, s slipway.Store) map[string]int {
	tb.Helper()
	evs, err := s.Events(context.Background(), slipway.EventFilter{})
	if err != nil {
		tb.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range evs {
		if e.Actor != slipway.ActorAnalysis || e.App != "api" || e.Rollout != "api-1" {
			tb.Errorf("event %+v: want actor analysis about api-1", e)
		}
		kinds[e.Kind]++
	}
	return kinds
}

func TestRunner_ExecuteMeasuresUntilCount(t *testing.T) {
	srv, hits := rateServer(t, 0.01)
	run := testRun(rateMetric(srv.URL, 3, 5*time.Millisecond))
	run.StartedAt = time.Now()
	s := newMemStore(t, run)
	var changes atomic.Int64
	r := NewRunner(Config{Store: s, Providers: providers()})
	if err := r.Execute(context.Background(), run.ID, func() { changes.Add(1) }); err != nil {
		t.Fatal(err)
	}
	got := storedRun(t, s, run.ID)
	if got.Phase != slipway.VerdictSuccessful || got.FinishedAt == nil {
		t.Fatalf("run = %s (%s), want Successful and finished", got.Phase, got.Message)
	}
	res := got.Results[0]
	if res.Count != 3 || res.Successful != 3 || len(res.Measurements) != 3 || hits.Load() != 3 {
		t.Fatalf("count %d successful %d kept %d requests %d, want 3 each", res.Count, res.Successful, len(res.Measurements), hits.Load())
	}
	for k := 1; k < 3; k++ {
		prev, cur := res.Measurements[k-1], res.Measurements[k]
		if gap := cur.StartedAt.Sub(prev.FinishedAt); gap < 5*time.Millisecond {
			t.Errorf("measurement %d started %v after the previous finished, want at least the interval", k, gap)
		}
		if res.Measurements[k].Value != "0.01" {
			t.Errorf("value = %q", res.Measurements[k].Value)
		}
	}
	if kinds := eventKinds(t, s); kinds[slipway.EventMeasurement] != 3 || kinds[slipway.EventAnalysisFinished] != 1 {
		t.Errorf("events = %v, want 3 measurements and 1 finished", kinds)
	}
	if changes.Load() != 3 {
		t.Errorf("changed called %d times, want once per commit (3)", changes.Load())
	}
}

func TestRunner_ExecuteFailsFastOnJob(t *testing.T) {
	smoke := slipway.Metric{
		Name:     "smoke",
		Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "sh", Args: []string{"-c", "echo boom $WHO; exit 3"}, Env: map[string]string{"WHO": "canary"}}},
		Count:    3,
	}
	srv, hits := rateServer(t, 0.01)
	background := rateMetric(srv.URL, 0, time.Hour)
	background.InitialDelay = slipway.Duration(time.Hour)
	run := testRun(smoke, background)
	run.StartedAt = time.Now()
	s := newMemStore(t, run)
	if err := NewRunner(Config{Store: s, Providers: providers()}).Execute(context.Background(), run.ID, nil); err != nil {
		t.Fatal(err)
	}
	got := storedRun(t, s, run.ID)
	if got.Phase != slipway.VerdictFailed || got.Message != "metric smoke: 1 failed measurement exceeds failureLimit 0; last: exit code 3" {
		t.Fatalf("run = %s %q", got.Phase, got.Message)
	}
	if ms := got.Results[0].Measurements[0]; ms.Value != "boom canary\n" {
		t.Errorf("job value = %q, want its output", ms.Value)
	}
	if got.Results[1].Phase != slipway.VerdictTerminated || hits.Load() != 0 {
		t.Errorf("background metric = %s after %d requests, want Terminated before measuring", got.Results[1].Phase, hits.Load())
	}
}

func TestRunner_ExecuteConflicts(t *testing.T) {
	t.Run("run ended by the engine: returns nil and records nothing", func(t *testing.T) {
		srv, _ := rateServer(t, 0.01)
		run := testRun(rateMetric(srv.URL, 3, time.Millisecond))
		run.StartedAt = time.Now()
		s := newMemStore(t, run)
		s.beforeCommit = func(int) {
			s.update(t, run.ID, func(r *slipway.AnalysisRun) { Terminate(r, "step skipped", time.Now()) })
		}
		if err := NewRunner(Config{Store: s, Providers: providers()}).Execute(context.Background(), run.ID, nil); err != nil {
			t.Fatal(err)
		}
		got := storedRun(t, s, run.ID)
		if got.Phase != slipway.VerdictTerminated || got.Message != "step skipped" || got.Results[0].Count != 0 {
			t.Fatalf("run = %s %q with %d measurements, want the engine's Terminated run untouched", got.Phase, got.Message, got.Results[0].Count)
		}
		if kinds := eventKinds(t, s); kinds[slipway.EventMeasurement] != 0 {
			t.Errorf("events = %v, want no measurement", kinds)
		}
	})
	t.Run("run still running: the measurement is recorded on the fresh copy", func(t *testing.T) {
		srv, hits := rateServer(t, 0.01)
		run := testRun(rateMetric(srv.URL, 3, time.Millisecond))
		run.StartedAt = time.Now()
		s := newMemStore(t, run)
		s.beforeCommit = func(n int) {
			if n == 3 { // the runner's second commit
				s.update(t, run.ID, func(r *slipway.AnalysisRun) { r.Message = "touched" })
			}
		}
		if err := NewRunner(Config{Store: s, Providers: providers()}).Execute(context.Background(), run.ID, nil); err != nil {
			t.Fatal(err)
		}
		got := storedRun(t, s, run.ID)
		res := got.Results[0]
		if got.Phase != slipway.VerdictSuccessful || res.Count != 3 || len(res.Measurements) != 3 || hits.Load() != 3 {
			t.Fatalf("run = %s, count %d, kept %d, requests %d; want Successful with 3 of each", got.Phase, res.Count, len(res.Measurements), hits.Load())
		}
		// seed, 3 measurements, the engine's update, and the second measurement once more
		if s.commits != 6 {
			t.Errorf("%d commits, want 6: the second measurement conflicted once and was committed again", s.commits)
		}
	})
}

func TestRunner_ExecuteMissingProviderIsAnError(t *testing.T) {
	m := rateMetric("http://127.0.0.1:1", 3, time.Millisecond)
	m.ConsecutiveErrorLimit = ptr(1)
	run := testRun(m)
	run.StartedAt = time.Now()
	s := newMemStore(t, run)
	if err := NewRunner(Config{Store: s, Providers: map[string]slipway.Provider{"job": job.New()}}).Execute(context.Background(), run.ID, nil); err != nil {
		t.Fatal(err)
	}
	got := storedRun(t, s, run.ID)
	if got.Phase != slipway.VerdictInconclusive || !strings.Contains(got.Message, `2 consecutive errors exceed consecutiveErrorLimit 1; last error: no "web" metric provider`) {
		t.Fatalf("run = %s %q", got.Phase, got.Message)
	}
}

func TestRunner_ExecuteErrors(t *testing.T) {
	t.Run("unknown run", func(t *testing.T) {
		err := NewRunner(Config{Store: newMemStore(t), Providers: providers()}).Execute(context.Background(), "nope", nil)
		if slipway.ErrorCode(err) != slipway.ENOTFOUND {
			t.Fatalf("err = %v, want ENOTFOUND", err)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		m := rateMetric("http://127.0.0.1:1", 1, 0)
		m.InitialDelay = slipway.Duration(time.Hour)
		run := testRun(m)
		run.StartedAt = time.Now()
		s := newMemStore(t, run)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- NewRunner(Config{Store: s, Providers: providers()}).Execute(ctx, run.ID, nil) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Execute did not return after cancel")
		}
	})
}

// checkSequence fails unless the kept measurements are in order with no repeat, and the count
// matches them.
func checkSequence(tb testing.TB, res slipway.MetricResult) {
	tb.Helper()
	if res.Count != len(res.Measurements) || res.Count != res.Successful {
		tb.Errorf("count %d, successful %d, kept %d: want all equal", res.Count, res.Successful, len(res.Measurements))
	}
	for k := 1; k < len(res.Measurements); k++ {
		if !res.Measurements[k].StartedAt.After(res.Measurements[k-1].FinishedAt) {
			tb.Errorf("measurement %d starts at %v, before the previous finished at %v", k, res.Measurements[k].StartedAt, res.Measurements[k-1].FinishedAt)
		}
	}
}

func TestRunner_BackgroundResumesAndTerminates(t *testing.T) {
	srv, hits := rateServer(t, 0.01)
	run := testRun(rateMetric(srv.URL, 0, 2*time.Millisecond))
	run.Kind = slipway.AnalysisBackground
	run.StartedAt = time.Now()
	s := newMemStore(t, run)
	r := NewRunner(Config{Store: s, Providers: providers()})
	count := func() int { return storedRun(t, s, run.ID).Results[0].Count }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Execute(ctx, run.ID, nil) }()
	slipwaytest.Eventually(t, 15*time.Second, "3 measurements", func() bool { return count() >= 3 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first Execute = %v, want context.Canceled", err)
	}
	first := count()

	go func() { done <- r.Execute(context.Background(), run.ID, nil) }()
	slipwaytest.Eventually(t, 15*time.Second, "3 more measurements", func() bool { return count() >= first+3 })
	s.update(t, run.ID, func(r *slipway.AnalysisRun) { Terminate(r, "rollout completed", time.Now()) })
	if err := <-done; err != nil {
		t.Fatalf("second Execute = %v, want nil once terminated", err)
	}
	got := storedRun(t, s, run.ID)
	if got.Phase != slipway.VerdictTerminated {
		t.Fatalf("run = %s", got.Phase)
	}
	checkSequence(t, got.Results[0])
	if n := int64(got.Results[0].Count); hits.Load() < n || hits.Load() > n+2 {
		t.Errorf("%d requests for %d recorded measurements", hits.Load(), n)
	}
}

func TestRunner_ExecuteTimesOutAMeasurement(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	m := rateMetric(srv.URL, 1, 0)
	m.Provider.Web.Timeout = slipway.Duration(30 * time.Millisecond)
	m.ConsecutiveErrorLimit = ptr(0)
	run := testRun(m)
	run.StartedAt = time.Now()
	s := newMemStore(t, run)
	if err := NewRunner(Config{Store: s, Providers: providers()}).Execute(context.Background(), run.ID, nil); err != nil {
		t.Fatal(err)
	}
	got := storedRun(t, s, run.ID)
	if got.Phase != slipway.VerdictInconclusive || !strings.Contains(got.Message, "1 consecutive error exceeds") || !strings.Contains(got.Message, "timed out after 30ms") {
		t.Fatalf("run = %s %q, want Inconclusive on a timed-out measurement", got.Phase, got.Message)
	}
	if measureTimeout(rateMetric("http://x", 1, 0)) != DefaultMeasureTimeout {
		t.Error("a metric without a timeout is not bounded by DefaultMeasureTimeout")
	}
}
