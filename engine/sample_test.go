package engine_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/metric/builtin"
)

// arrivingTraffic is the proxy's view of a canary whose traffic arrives shortly after its
// analysis step begins, as at about 15 requests/s: the first reads of a window find it empty,
// then every read finds 6 more requests, all answered 2xx.
type arrivingTraffic struct{ reads atomic.Int64 }

func (a *arrivingTraffic) RequestWindow(_ context.Context, app, revision string, d time.Duration) (slipway.RequestWindow, error) {
	n := max(0, a.reads.Add(1)-3) * 6
	w := slipway.RequestWindow{Since: time.Now().Add(-d)}
	if n > 0 {
		w.Requests, w.RequestRate, w.P50, w.P95, w.P99 = n, float64(n)/d.Seconds(), time.Millisecond, 2*time.Millisecond, 3*time.Millisecond
	}
	return w, nil
}

// An analysis step right after setWeight measures the canary with the builtin provider before
// its traffic has arrived: the measurement waits for a minimum sample instead of going
// inconclusive, and the healthy canary is promoted.
func TestEngine_BuiltinAnalysisWaitsForAMinimumSample(t *testing.T) {
	traffic := &arrivingTraffic{}
	h := newHarnessWith(t, map[string]slipway.Provider{"builtin": builtin.New(traffic)})
	tpl := slipway.AnalysisTemplate{Name: "canary-errors", Metrics: []slipway.Metric{{
		Name: "error-rate", Count: 2, Interval: slipway.Duration(20 * time.Millisecond),
		SuccessCondition: "result < 0.05",
		Provider:         slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate}},
	}}}
	s := h.analysedCanary(tpl, nil)
	if s.Rollout.Phase != slipway.PhaseCompleted {
		t.Fatalf("rollout = %s: %s; want Completed", s.Rollout.Phase, s.Rollout.Reason)
	}
	if n := traffic.reads.Load(); n < 6 {
		t.Fatalf("%d reads of the window; want the analysis to have waited for its sample", n)
	}
	var waited, measured int
	for _, e := range h.events("web") {
		switch e.Kind {
		case slipway.EventMeasurement:
			measured++
		case slipway.EventAnalysisWaiting:
			if !strings.Contains(e.Reason, "answered 0 of the 20 requests needed") {
				t.Errorf("waiting event %q: %q; want the sample named", e.Message, e.Reason)
			}
			waited++
		}
	}
	if waited != 1 || measured != 2 {
		t.Fatalf("%d waiting and %d measurement events; want the wait once and 2 measurements", waited, measured)
	}
}

// idleCanary is the proxy's view of a canary that never takes a request.
type idleCanary struct{}

func (idleCanary) RequestWindow(_ context.Context, app, revision string, d time.Duration) (slipway.RequestWindow, error) {
	return slipway.RequestWindow{Since: time.Now().Add(-d)}, nil
}

// A canary whose traffic never arrives is not promoted: its analysis waits for the minimum
// sample up to the metric's sampleTimeout, then counts no data, and the rollout pauses.
func TestEngine_BuiltinAnalysisWithoutTrafficPauses(t *testing.T) {
	h := newHarnessWith(t, map[string]slipway.Provider{"builtin": builtin.New(idleCanary{})})
	tpl := slipway.AnalysisTemplate{Name: "canary-errors", Metrics: []slipway.Metric{{
		Name: "error-rate", Count: 1, Interval: slipway.Duration(20 * time.Millisecond),
		SampleTimeout:    slipway.Duration(200 * time.Millisecond),
		SuccessCondition: "result < 0.05",
		Provider:         slipway.ProviderSpec{Builtin: &slipway.BuiltinMetric{Metric: slipway.BuiltinErrorRate}},
	}}}
	var start time.Time
	s := h.analysedCanary(tpl, func() { start = time.Now() })
	r := s.Rollout
	if r.Phase != slipway.PhasePaused || r.Cause != slipway.PauseInconclusive || !strings.Contains(r.Reason, "no minimum sample within sampleTimeout 200ms") {
		t.Fatalf("rollout = %s (%s): %s; want Paused inconclusive after the sample timeout", r.Phase, r.Cause, r.Reason)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("paused after %s, before the sample timeout", waited)
	}
}

// analysedCanary rolls web out at v1, then applies v2 as a canary whose analysis step,
// right after setWeight 20, runs template tpl, and returns the status once web-2 has paused
// or ended. beforeV2, when set, runs just before v2 is applied.
func (h *harness) analysedCanary(tpl slipway.AnalysisTemplate, beforeV2 func()) slipway.AppStatus {
	h.t.Helper()
	st := canary(
		slipway.Step{SetWeight: intp(20)},
		slipway.Step{Analysis: &slipway.AnalysisRef{Templates: []string{tpl.Name}}},
		slipway.Step{SetWeight: intp(60)},
	)
	set := func(v string) slipway.Set {
		return slipway.Set{Apps: []slipway.App{app("web", v, 2, st)}, Templates: []slipway.AnalysisTemplate{tpl}}
	}
	h.apply(set("v1"))
	h.waitPhase("web", "web-1", slipway.PhaseCompleted)
	if beforeV2 != nil {
		beforeV2()
	}
	h.apply(set("v2"))
	return h.waitRollout("web", "web-2 to pause or end", func(r slipway.RolloutStatus) bool { return r.ID == "web-2" && settled(r) })
}
