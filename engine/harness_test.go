package engine_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
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

// harness runs a real Engine on a real SQLite file and the sim platform.
type harness struct {
	t      testing.TB
	path   string
	sim    *sim.Platform
	store  *sqlite.Store
	eng    *engine.Engine
	cancel context.CancelFunc
	done   chan error
	// providers measure besides web and job (builtin, say).
	providers map[string]slipway.Provider
	// configure, when set, changes the engine's configuration before it starts.
	configure func(*engine.Config)
	// reconcilers is engine.Config.Reconcilers for the next start.
	reconcilers int
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with more analysis providers, by kind.
func newHarnessWith(t testing.TB, providers map[string]slipway.Provider) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "slipway.db"), sim: sim.New(sim.Config{ReadyDelay: 15 * time.Millisecond}), providers: providers}
	h.start(nil, nil)
	t.Cleanup(h.stop)
	return h
}

// newHarnessWithConfig is newHarness with configure applied to the engine's configuration.
func newHarnessWithConfig(t testing.TB, configure func(*engine.Config)) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "slipway.db"), sim: sim.New(sim.Config{ReadyDelay: 15 * time.Millisecond}), configure: configure}
	h.start(nil, nil)
	t.Cleanup(h.stop)
	return h
}

// start opens the store and runs an engine on it; wrap, when set, wraps the store and the
// platform the engine sees.
func (h *harness) start(wrapStore func(slipway.Store) slipway.Store, wrapPlatform func(slipway.Platform) slipway.Platform) {
	h.t.Helper()
	st, err := sqlite.Open(h.path, time.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = st
	var s slipway.Store = st
	var p slipway.Platform = h.sim
	if wrapStore != nil {
		s = wrapStore(s)
	}
	if wrapPlatform != nil {
		p = wrapPlatform(p)
	}
	providers := map[string]slipway.Provider{"web": web.New(http.DefaultClient), "job": job.New()}
	maps.Copy(providers, h.providers)
	runner := analysis.NewRunner(analysis.Config{Store: s, Providers: providers})
	cfg := engine.Config{Store: s, Platform: p, Analysis: runner, Poll: 5 * time.Millisecond, Resync: 50 * time.Millisecond,
		Reconcilers: h.reconcilers}
	if h.configure != nil {
		h.configure(&cfg)
	}
	h.eng = engine.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.eng.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("engine run: %v", err)
	}
	h.cancel = nil
	if err := h.store.Close(); err != nil {
		h.t.Errorf("close store: %v", err)
	}
}

func (h *harness) apply(s slipway.Set) slipway.Plan {
	h.t.Helper()
	p, err := h.eng.Apply(context.Background(), s, slipway.ApplyOptions{Actor: "test"})
	if err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	return p
}

// waitRollout polls until the app's latest rollout satisfies ok.
func (h *harness) waitRollout(app, what string, ok func(slipway.RolloutStatus) bool) slipway.AppStatus {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last slipway.AppStatus
	for time.Now().Before(deadline) {
		s, err := h.eng.Status(context.Background(), app)
		if err == nil && s.Rollout != nil && ok(*s.Rollout) {
			return s
		}
		last = s
		time.Sleep(5 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	h.t.Fatalf("timed out waiting for %s: %s", what, b)
	return last
}

// waitPhase polls until the rollout reaches phase and, for an ended rollout, the platform
// has converged to what the engine wants (no drift).
func (h *harness) waitPhase(app, rollout string, phase slipway.Phase) slipway.AppStatus {
	h.t.Helper()
	var s slipway.AppStatus
	deadline := time.Now().Add(15 * time.Second)
	for {
		s = h.waitRollout(app, rollout+" "+string(phase), func(r slipway.RolloutStatus) bool {
			return r.ID == rollout && r.Phase == phase
		})
		if !phase.Terminal() || len(s.Drift) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s did not converge after %s: %+v", app, phase, s.Drift)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) events(app string) []slipway.Event {
	h.t.Helper()
	evs, err := h.store.Events(context.Background(), slipway.EventFilter{App: app})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// checkServer is a web metric target whose answer the test sets.
type checkServer struct {
	URL   string
	value atomic.Value // float64
}

func newCheckServer(t testing.TB, v float64) *checkServer {
	c := &checkServer{}
	c.value.Store(v)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"errorRate": c.value.Load()})
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func intp(n int) *int { return &n }

func app(name, version string, replicas int, st slipway.Strategy) slipway.App {
	return slipway.App{Name: name, Replicas: replicas, Version: version,
		Run:      slipway.RunSpec{Command: "/bin/app", Args: []string{"--version", version, "--port", "${PORT}"}},
		Strategy: st}
}

func errorRateTemplate(url string) slipway.AnalysisTemplate {
	return slipway.AnalysisTemplate{Name: "error-rate", Metrics: []slipway.Metric{{
		Name: "errors", Interval: slipway.Duration(5 * time.Millisecond), Count: 3,
		SuccessCondition: "result < 0.05", FailureCondition: "result >= 0.05",
		Provider: slipway.ProviderSpec{Web: &slipway.WebMetric{URL: url, JSONPath: "$.errorRate"}},
	}}}
}

func canary(steps ...slipway.Step) slipway.Strategy {
	return slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: steps, ProgressDeadline: slipway.Duration(10 * time.Second)}}
}
