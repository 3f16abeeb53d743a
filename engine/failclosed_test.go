package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/metric/job"
	"slipway.dev/slipway/metric/web"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/sqlite"
)

// refusedURL returns the URL of a server that has closed: connecting to it is refused.
func refusedURL(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	return url
}

// settled reports a rollout that has stopped moving by itself: paused or ended.
func settled(r slipway.RolloutStatus) bool {
	return r.Phase == slipway.PhasePaused || r.Phase.Terminal()
}

// A canary whose analysis cannot measure (its web check is refused, its job's command does
// not exist) is never promoted: the analysis ends inconclusive and the rollout pauses at the
// analysis step with the error as its reason, all but the canary's share on the old revision.
func TestEngine_CanaryNotPromotedWhenAnalysisErrors(t *testing.T) {
	h := newHarness(t)
	tpl := slipway.AnalysisTemplate{Name: "checks", Metrics: []slipway.Metric{{
		Name: "error-rate", Count: 1, Interval: slipway.Duration(5 * time.Millisecond),
		SuccessCondition: "result < 0.05",
		Provider:         slipway.ProviderSpec{Web: &slipway.WebMetric{URL: refusedURL(t), JSONPath: "$.errorRate"}},
	}, {
		Name: "smoke", Count: 1, Interval: slipway.Duration(5 * time.Millisecond),
		Provider: slipway.ProviderSpec{Job: &slipway.JobMetric{Command: "/nonexistent/slipway-smoke-check"}},
	}}}
	s := h.analysedCanary(tpl, nil)
	r := s.Rollout
	if r.Phase != slipway.PhasePaused || r.Cause != slipway.PauseInconclusive || r.Weight != 20 {
		t.Fatalf("rollout = %s (%s) at %d%%: %s; want Paused inconclusive at 20%%", r.Phase, r.Cause, r.Weight, r.Reason)
	}
	if !strings.Contains(r.Reason, "consecutive errors") || s.Stable.Version != "v1" {
		t.Fatalf("reason %q, stable %s; want the errors named and v1 still stable", r.Reason, s.Stable.Version)
	}
}

// A flag ramp whose analysis cannot measure pauses where it is, inconclusive, and never moves
// on to a larger share.
func TestRampWorker_ErroringAnalysisPauses(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	runner := analysis.NewRunner(analysis.Config{Store: st, Providers: map[string]slipway.Provider{
		"web": web.New(nil), "job": job.New(),
	}})
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{}), Analysis: runner,
		Poll: 5 * time.Millisecond, Resync: 30 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	tpl := slipway.AnalysisTemplate{Name: "variant-check", Metrics: []slipway.Metric{{
		Name: "errors", Count: 1, Interval: slipway.Duration(5 * time.Millisecond),
		SuccessCondition: "result < 0.05",
		Provider:         slipway.ProviderSpec{Web: &slipway.WebMetric{URL: refusedURL(t) + "/?variant={{variant}}", JSONPath: "$.rate"}},
	}}}
	off := "off"
	flag := slipway.Flag{State: slipway.FlagEnabled, DefaultVariant: &off,
		Variants: map[string]json.RawMessage{"on": json.RawMessage("true"), "off": json.RawMessage("false")},
		Ramp: &slipway.FlagRamp{Variant: "on", Steps: []slipway.RampStep{
			{Weight: 10, Pause: slipway.Duration(10 * time.Millisecond)}, {Weight: 100},
		}, Analysis: &slipway.AnalysisRef{Templates: []string{"variant-check"}}}}
	set := slipway.Set{Templates: []slipway.AnalysisTemplate{tpl},
		FlagSets: []slipway.FlagSet{{ID: "web", Flags: map[string]slipway.Flag{"checkout": flag}}}}
	if _, err := eng.Apply(context.Background(), set, slipway.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var r slipway.Ramp
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err = eng.FlagManager().Ramp(context.Background(), "checkout")
		if err == nil && r.Phase != slipway.PhaseProgressing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ramp still progressing: %+v, %v", r, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r.Phase != slipway.PhasePaused || r.Pause != slipway.PauseInconclusive || r.Weight != 1000 {
		t.Fatalf("ramp = %s (%s) at %d: %s; want Paused inconclusive at 10%%", r.Phase, r.Pause, r.Weight, r.Reason)
	}
	if !strings.Contains(r.Reason, "connection refused") {
		t.Fatalf("reason %q; want the error named", r.Reason)
	}
}
