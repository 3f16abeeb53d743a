package delivery_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/delivery"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/metric/job"
	"slipway.dev/slipway/metric/web"
	"slipway.dev/slipway/platform/sim"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/sqlite"
)

// place is an environment on a real engine, a real SQLite file and the sim platform.
type place struct {
	env   slipway.Environment
	store *sqlite.Store
	eng   *engine.Engine
	stop  func()
}

// world is a server's worth of environments and a delivery Manager on the default store.
type world struct {
	t      *testing.T
	dir    string
	clock  *slipwaytest.Clock
	store  *sqlite.Store // the default environment's: pipelines, releases, their events
	places map[string]*place
	m      *delivery.Manager
	cancel context.CancelFunc
	done   chan error
}

func newWorld(t *testing.T, envs ...string) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), clock: slipwaytest.NewClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)), places: map[string]*place{}}
	st, err := sqlite.Open(filepath.Join(w.dir, "slipway.db"), w.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	w.store = st
	t.Cleanup(func() { _ = st.Close() })
	for _, name := range envs {
		w.places[name] = w.openPlace(name)
	}
	w.start()
	t.Cleanup(w.stopManager)
	return w
}

func (w *world) openPlace(name string) *place {
	w.t.Helper()
	st, err := sqlite.Open(filepath.Join(w.dir, name+".db"), time.Now)
	if err != nil {
		w.t.Fatal(err)
	}
	env := slipway.Environment{Name: name, Target: slipway.Target{Kind: slipway.TargetSim}}
	eng := engine.New(engine.Config{Store: st, Platform: sim.New(sim.Config{ReadyDelay: 2 * time.Millisecond}),
		Analysis: analysis.NewRunner(analysis.Config{Store: st}), Poll: 5 * time.Millisecond, Resync: time.Hour,
		Environment: name, Target: slipway.TargetSim})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	p := &place{env: env, store: st, eng: eng, stop: func() { cancel(); <-done; _ = st.Close() }}
	w.t.Cleanup(p.stop)
	return p
}

// start runs a new Manager on the default store.
func (w *world) start() {
	w.m = delivery.New(delivery.Config{Store: w.store, Places: func(name string) (delivery.Place, bool) {
		p, ok := w.places[name]
		if !ok {
			return delivery.Place{}, false
		}
		return delivery.Place{Environment: p.env, Deployer: p.eng, State: p.store}, true
	}, Measure: analysis.NewRunner(analysis.Config{Providers: map[string]slipway.Provider{"web": web.New(http.DefaultClient)}}),
		Verify: job.New(), Poll: 5 * time.Millisecond, GatePoll: 10 * time.Millisecond, Now: w.clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- w.m.Run(ctx) }()
}

func (w *world) stopManager() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	if err := <-w.done; err != nil {
		w.t.Errorf("manager run: %v", err)
	}
	w.cancel = nil
}

// app applies app name at version v1 in every environment of the world.
func (w *world) app(name string) {
	w.t.Helper()
	for _, p := range w.places {
		a := slipway.App{Name: name, Version: "v1", Replicas: 2, Run: slipway.RunSpec{Command: "./" + name},
			Strategy: slipway.Strategy{Rolling: &slipway.RollingStrategy{}}}
		if _, err := p.eng.Apply(context.Background(), slipway.Set{Apps: []slipway.App{a}}, slipway.ApplyOptions{Actor: "test"}); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) pipelines(ps ...slipway.Pipeline) {
	w.t.Helper()
	if _, err := w.m.ApplyPipelines(context.Background(), ps, slipway.ApplyOptions{Actor: "test"}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) release(app, version string, fix bool) slipway.Release {
	w.t.Helper()
	r, err := w.m.CreateRelease(context.Background(), slipway.NewRelease{App: app, Version: version, Fix: fix, Actor: "ci",
		Source: slipway.ReleaseSource{Commit: "abc123", Trigger: "cli"}})
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// waitRelease waits until release id satisfies ok.
func (w *world) waitRelease(id, what string, ok func(slipway.Release) bool) slipway.Release {
	w.t.Helper()
	var r slipway.Release
	slipwaytest.Eventually(w.t, 20*time.Second, id+": "+what, func() bool {
		got, err := w.m.Release(context.Background(), id)
		r = got
		return err == nil && ok(got)
	})
	return r
}

// version returns the stable version app runs in environment env.
func (w *world) version(env, app string) string {
	w.t.Helper()
	st, err := w.places[env].eng.Status(context.Background(), app)
	if err != nil {
		w.t.Fatal(err)
	}
	if st.Stable == nil {
		return ""
	}
	return st.Stable.Version
}

func waitingFor(stage, text string) func(slipway.Release) bool {
	return func(r slipway.Release) bool {
		rs := r.Stages[r.Stage]
		return rs.Name == stage && rs.State == slipway.StageWaiting && strings.Contains(rs.Waiting, text)
	}
}
