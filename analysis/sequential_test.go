package analysis

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// sequentialMetric is a builtin error_rate judged by a sequential test, as a run has it.
func sequentialMetric(name string) slipway.Metric {
	since := t0
	return slipway.Metric{Name: name, Count: 1, Interval: slipway.Duration(200 * time.Millisecond),
		SampleTimeout: slipway.Duration(time.Minute),
		Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate, App: "api", Revision: "bbb222",
			Sequential: &slipway.SequentialTest{Tolerance: 0.01, Baseline: "aaa111", Since: &since}}}}
}

// decided is what the builtin provider answers when its test decided.
func decided(decision string) map[string]any {
	return map[string]any{
		"decision": decision,
		"canary":   map[string]any{"revision": "bbb222", "requests": 40.0, "failures": 8.0, "rate": 0.2},
		"baseline": map[string]any{"revision": "aaa111", "requests": 400.0, "failures": 0.0, "rate": 0.0},
		"reason":   "the canary fails more than tolerated: canary 8/40, baseline 0/400",
	}
}

// errNotDecided is what it answers while the test has no decision.
var errNotDecided = fmt.Errorf("not yet decided: canary 1/12, baseline 0/110; evidence to fail 1.3 of 20: %w", slipway.ErrInsufficientData)

// TestRecord_Sequential: a sequential metric waits while its test has no decision (never a
// pass), fails the run at once on Fail with failureLimit 0, passes on Pass, and never passes
// a value without a decision; its messages carry the test's reason with the counts.
func TestRecord_Sequential(t *testing.T) {
	t.Run("no decision waits, then Fail fails the run at once", func(t *testing.T) {
		run := testRun(sequentialMetric("errors"))
		Record(&run, 0, nil, errNotDecided, t0, t0.Add(time.Millisecond))
		res := run.Results[0]
		if run.Phase != slipway.VerdictRunning || res.Waiting == nil || res.Count != 0 || len(res.Measurements) != 0 {
			t.Fatalf("after no decision: run %s, metric %+v", run.Phase, res)
		}
		if want := "metric errors waits for its sequential test to decide: not yet decided: canary 1/12"; !strings.Contains(run.Message, want) {
			t.Fatalf("run message = %q, want %q", run.Message, want)
		}
		if _, due, _ := Due(run); !due.Equal(t0.Add(time.Millisecond + 200*time.Millisecond)) {
			t.Fatalf("Due = %v; want the interval after the check", due)
		}
		Record(&run, 0, decided("Fail"), nil, t0.Add(time.Second), t0.Add(time.Second))
		res = run.Results[0]
		if run.Phase != slipway.VerdictFailed || res.Failed != 1 || run.FinishedAt == nil {
			t.Fatalf("after Fail: run %s, metric %+v", run.Phase, res)
		}
		ms := res.Measurements[0]
		if ms.Phase != slipway.VerdictFailed || !strings.Contains(ms.Message, "canary 8/40, baseline 0/400") || !strings.Contains(ms.Value, `"decision":"Fail"`) {
			t.Errorf("measurement = %+v", ms)
		}
		if !strings.Contains(run.Message, "metric errors: 1 failed measurement exceeds failureLimit 0; last: the canary fails more than tolerated: canary 8/40") {
			t.Errorf("run message = %q", run.Message)
		}
	})
	t.Run("Pass passes", func(t *testing.T) {
		run := testRun(sequentialMetric("errors"))
		Record(&run, 0, decided("Pass"), nil, t0, t0)
		if run.Phase != slipway.VerdictSuccessful || run.Results[0].Successful != 1 {
			t.Fatalf("after Pass: run %s (%s)", run.Phase, run.Message)
		}
	})
	t.Run("a value without a decision is an error, never a pass", func(t *testing.T) {
		for _, v := range []any{0.0, map[string]any{"decision": "Continue"}, map[string]any{}, nil} {
			run := testRun(sequentialMetric("errors"))
			Record(&run, 0, v, nil, t0, t0)
			res := run.Results[0]
			if res.Errors != 1 || res.Successful != 0 || run.Phase != slipway.VerdictRunning {
				t.Errorf("value %v: metric %+v, run %s", v, res, run.Phase)
			}
		}
	})
	t.Run("no decision within the sample timeout is no data", func(t *testing.T) {
		run := testRun(sequentialMetric("errors"))
		Record(&run, 0, nil, errNotDecided, t0, t0)
		Record(&run, 0, nil, errNotDecided, t0.Add(time.Minute), t0.Add(time.Minute))
		if run.Phase != slipway.VerdictInconclusive || !strings.Contains(run.Message, "no decision of the sequential test within sampleTimeout 1m") {
			t.Fatalf("run %s (%s); want Inconclusive naming the timeout", run.Phase, run.Message)
		}
	})
}

// TestNewRun_StartsSequentialTests: a run resolves a sequential test's baseline to the
// rollout's stable revision and starts its counts at the run's start, on a copy of the
// template; without a stable revision it is a problem.
func TestNewRun_StartsSequentialTests(t *testing.T) {
	m := slipway.Metric{Name: "errors", Count: 1, Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{
		Metric: slipway.BuiltinErrorRate, Sequential: &slipway.SequentialTest{Tolerance: 0.01}}}}
	templates := map[string]slipway.AnalysisTemplate{"seq": {Name: "seq", Metrics: []slipway.Metric{m}}}
	ref := slipway.AnalysisRef{Templates: []string{"seq"}}
	run, err := NewRun("api-7-run1", slipway.AnalysisStep, 1, testRollout(), "", ref, templates, t0)
	if err != nil {
		t.Fatal(err)
	}
	b := run.Metrics[0].Provider.Builtin
	if b.Revision != "bbb222" || b.Sequential.Baseline != "aaa111" || b.Sequential.Since == nil || !b.Sequential.Since.Equal(t0) {
		t.Fatalf("builtin = %+v, sequential %+v", b, b.Sequential)
	}
	if m.Provider.Builtin.Sequential.Baseline != "" || m.Provider.Builtin.Sequential.Since != nil {
		t.Fatalf("the template changed: %+v", m.Provider.Builtin.Sequential)
	}
	first := testRollout()
	first.From = ""
	_, err = NewRun("api-1-run1", slipway.AnalysisStep, 1, first, "", ref, templates, t0)
	var e *slipway.Error
	if !errors.As(err, &e) || !strings.Contains(strings.Join(e.Details, "; "), "compares the canary with the stable revision, but the rollout has none") {
		t.Fatalf("NewRun without a stable revision = %v", err)
	}
}
