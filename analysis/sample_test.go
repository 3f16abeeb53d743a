package analysis

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// fewRequests is what a builtin provider answers about a window holding too small a sample.
func fewRequests(n int) obs {
	return obs{err: fmt.Errorf("revision bbb222 of app api answered %d of the 20 requests needed (minRequests) in the last 30s: %w", n, slipway.ErrInsufficientData)}
}

func builtinMetric(name string) slipway.Metric {
	return slipway.Metric{Name: name, SuccessCondition: "result < 0.05",
		Provider: slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate, App: "api", Revision: "bbb222"}}}
}

// TestRecord_WaitsForAMinimumSample: a check that finds too small a sample is no measurement;
// the metric checks again shortly until the sample is there, and past its sample timeout the
// check counts as no data, never as a success.
func TestRecord_WaitsForAMinimumSample(t *testing.T) {
	step := 500 * time.Millisecond // between the test's checks
	m := builtinMetric("errors")
	m.Count, m.Interval, m.SampleTimeout = 2, slipway.Duration(10*time.Second), slipway.Duration(time.Minute)

	t.Run("too small a sample waits, then the sample is measured", func(t *testing.T) {
		run := testRun(m)
		at := t0
		for k, o := range []obs{fewRequests(0), fewRequests(6), fewRequests(12)} {
			Record(&run, 0, nil, o.err, at, at.Add(step))
			res := run.Results[0]
			w := res.Waiting
			if w == nil || w.Checks != k+1 || !w.Since.Equal(t0) || !w.CheckedAt.Equal(at.Add(step)) {
				t.Fatalf("check %d: waiting = %+v", k+1, w)
			}
			if res.Phase != slipway.VerdictRunning || res.Count != 0 || res.Errors != 0 || res.Inconclusive != 0 || len(res.Measurements) != 0 {
				t.Fatalf("check %d counted: %+v", k+1, res)
			}
			if !strings.Contains(run.Message, "metric errors waits for a minimum sample: revision bbb222 of app api answered") {
				t.Fatalf("run message = %q; want the wait named", run.Message)
			}
			next, due, ok := Due(run)
			if !ok || next != 0 || !due.Equal(at.Add(step).Add(SampleRetryDelay)) {
				t.Fatalf("check %d: Due = %v %v; want SampleRetryDelay after the check", k+1, due, ok)
			}
			at = due
		}
		Record(&run, 0, 0.01, nil, at, at.Add(step))
		res := run.Results[0]
		if res.Waiting != nil || res.Count != 1 || res.Successful != 1 || run.Message != "" {
			t.Fatalf("after the sample arrived: %+v, run message %q", res, run.Message)
		}
		if _, due, _ := Due(run); !due.Equal(at.Add(step).Add(m.Interval.D())) {
			t.Fatalf("Due = %v; want an interval after the measurement", due)
		}
	})
	t.Run("past the sample timeout the check is no data", func(t *testing.T) {
		for _, tc := range []struct {
			policy slipway.NoDataPolicy
			want   slipway.Verdict
		}{{"", slipway.VerdictInconclusive}, {slipway.NoDataFailure, slipway.VerdictFailed}} {
			m := m
			m.NoData, m.SampleTimeout = tc.policy, slipway.Duration(3*time.Second)
			run := testRun(m)
			for _, d := range []time.Duration{0, time.Second, 2 * time.Second} {
				Record(&run, 0, nil, fewRequests(3).err, t0.Add(d), t0.Add(d+step))
			}
			if run.Phase != slipway.VerdictRunning {
				t.Fatalf("run = %s within the timeout", run.Phase)
			}
			Record(&run, 0, nil, fewRequests(3).err, t0.Add(3*time.Second), t0.Add(3*time.Second+step))
			res := run.Results[0]
			if res.Phase != tc.want || run.Phase != tc.want || res.Waiting != nil || res.Count != 1 {
				t.Fatalf("noData %q: metric %s, run %s (%s); want %s with one measurement", tc.policy, res.Phase, run.Phase, run.Message, tc.want)
			}
			if !strings.Contains(run.Message, "no minimum sample within sampleTimeout 3s: revision bbb222 of app api answered 3 of the 20") {
				t.Fatalf("run message = %q; want the timeout and the sample named", run.Message)
			}
		}
	})
	t.Run("without a sample timeout the default bounds the wait", func(t *testing.T) {
		m := builtinMetric("errors")
		run := testRun(m)
		Record(&run, 0, nil, fewRequests(0).err, t0, t0)
		if _, due, _ := Due(run); !due.Equal(t0.Add(SampleRetryDelay)) {
			t.Fatalf("Due = %v; want SampleRetryDelay after the check", due)
		}
		end := t0.Add(slipway.DefaultSampleTimeout.D())
		Record(&run, 0, nil, fewRequests(0).err, end.Add(-time.Second), end.Add(-time.Millisecond))
		if run.Phase != slipway.VerdictRunning {
			t.Fatalf("run = %s before DefaultSampleTimeout", run.Phase)
		}
		Record(&run, 0, nil, fewRequests(0).err, end, end)
		if run.Phase != slipway.VerdictInconclusive {
			t.Fatalf("run = %s at DefaultSampleTimeout; want Inconclusive", run.Phase)
		}
	})
	t.Run("a terminated run stops waiting", func(t *testing.T) {
		run := testRun(builtinMetric("errors"))
		Record(&run, 0, nil, fewRequests(0).err, t0, t0)
		Terminate(&run, "step skipped", t0.Add(time.Second))
		if run.Results[0].Waiting != nil || run.Message != "step skipped" {
			t.Fatalf("after Terminate: %+v, %q", run.Results[0], run.Message)
		}
		if _, _, ok := Due(run); ok {
			t.Fatal("Due on a terminated run")
		}
	})
}

// TestNewRun_BoundsTheSampleWait: a rollout's builtin metrics wait for their minimum sample at
// most the rollout's progress deadline, unless they set sampleTimeout; other metrics and flag
// runs are left alone.
func TestNewRun_BoundsTheSampleWait(t *testing.T) {
	own := builtinMetric("own")
	own.SampleTimeout = slipway.Duration(time.Minute)
	tpl := slipway.AnalysisTemplate{Name: "proxy", Metrics: []slipway.Metric{builtinMetric("errors"), own, rate(webMetric("web"))}}
	templates := map[string]slipway.AnalysisTemplate{"proxy": tpl}
	ref := slipway.AnalysisRef{Templates: []string{"proxy"}}
	r := testRollout()
	for _, tc := range []struct {
		strategy slipway.Strategy
		want     slipway.Duration
	}{
		{slipway.Strategy{Canary: &slipway.CanaryStrategy{ProgressDeadline: slipway.Duration(90 * time.Second)}}, slipway.Duration(90 * time.Second)},
		{slipway.Strategy{BlueGreen: &slipway.BlueGreenStrategy{}}, slipway.DefaultProgressDeadline},
	} {
		r.Spec = tc.strategy
		run, err := NewRun("api-7-run1", slipway.AnalysisStep, 0, r, "", ref, templates, t0)
		if err != nil {
			t.Fatal(err)
		}
		if got := run.Metrics[0].SampleTimeout; got != tc.want {
			t.Errorf("sampleTimeout = %s, want the progress deadline %s", got, tc.want)
		}
		if got := run.Metrics[1].SampleTimeout; got != slipway.Duration(time.Minute) {
			t.Errorf("a metric's own sampleTimeout became %s", got)
		}
		if got := run.Metrics[2].SampleTimeout; got != 0 {
			t.Errorf("a web metric got sampleTimeout %s", got)
		}
	}
}

// sampleProvider answers ErrInsufficientData to its first waits calls, then rate.
type sampleProvider struct {
	calls atomic.Int64
	waits int64
}

func (p *sampleProvider) Measure(ctx context.Context, m slipway.Metric) (any, error) {
	if n := p.calls.Add(1); n <= p.waits {
		return nil, fmt.Errorf("answered %d of the 20 requests needed: %w", n, slipway.ErrInsufficientData)
	}
	return 0.01, nil
}

// TestRunner_ExecuteWaitsForAMinimumSample: the runner checks again while the sample is too
// small, commits each check, records the wait's start as one analysis.waiting event, and
// judges the sample once it is there.
func TestRunner_ExecuteWaitsForAMinimumSample(t *testing.T) {
	m := builtinMetric("errors")
	m.Count, m.Interval = 1, slipway.Duration(2*time.Millisecond)
	run := testRun(m)
	run.StartedAt = time.Now()
	s := newMemStore(t, run)
	p := &sampleProvider{waits: 4}
	if err := NewRunner(Config{Store: s, Providers: map[string]slipway.Provider{"builtin": p}}).Execute(context.Background(), run.ID, nil); err != nil {
		t.Fatal(err)
	}
	got := storedRun(t, s, run.ID)
	res := got.Results[0]
	if got.Phase != slipway.VerdictSuccessful || res.Count != 1 || res.Waiting != nil || p.calls.Load() != 5 {
		t.Fatalf("run = %s (%s), count %d after %d calls; want Successful after 4 waits", got.Phase, got.Message, res.Count, p.calls.Load())
	}
	if kinds := eventKinds(t, s); kinds[slipway.EventAnalysisWaiting] != 1 || kinds[slipway.EventMeasurement] != 1 {
		t.Fatalf("events = %v; want one analysis.waiting and one measurement", kinds)
	}
	evs, _ := s.Events(context.Background(), slipway.EventFilter{})
	if e := evs[0]; e.Kind != slipway.EventAnalysisWaiting || !strings.Contains(e.Reason, "answered 1 of the 20") {
		t.Fatalf("first event = %+v", e)
	}
}
