package delivery_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis"
	"slipway.dev/slipway/delivery"
	"slipway.dev/slipway/metric/job"
	"slipway.dev/slipway/metric/web"
)

// TestRelease_WaitsForAnEnvironmentThatCouldNotStart: an environment the server declares
// but does not run (its runtime could not start; the fleet says "fix it and restart the
// server") holds a release that reaches it; the release must not be aborted for good, and
// carries on once the environment runs again.
func TestRelease_WaitsForAnEnvironmentThatCouldNotStart(t *testing.T) {
	w := newWorld(t, "staging", "production")
	w.app("web")
	w.stopManager()
	var down atomic.Bool
	down.Store(true)
	w.m = delivery.New(delivery.Config{Store: w.store, Places: func(name string) (delivery.Place, bool) {
		p, ok := w.places[name]
		if !ok || (name == "production" && down.Load()) {
			return delivery.Place{}, false
		}
		return delivery.Place{Environment: p.env, Deployer: p.eng, State: p.store}, true
	}, Measure: analysis.NewRunner(analysis.Config{Providers: map[string]slipway.Provider{"web": web.New(http.DefaultClient)}}),
		Verify: job.New(), Poll: 5 * time.Millisecond, GatePoll: 10 * time.Millisecond, Now: w.clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- w.m.Run(ctx) }()

	w.pipelines(slipway.Pipeline{Name: "web", Apps: []string{"web"}, Stages: []slipway.Stage{
		{Name: "staging", Environments: []string{"staging"}},
		{Name: "production", Environments: []string{"production"}},
	}})
	r := w.release("web", "v2", false)
	got := w.waitRelease(r.ID, "waiting for production, or ended", func(r slipway.Release) bool {
		return r.Phase.Terminal() || waitingFor("production", "not running")(r)
	})
	if got.Phase.Terminal() {
		t.Fatalf("release ended while production could not start: %s (%s)", got.Phase, got.Reason)
	}
	down.Store(false)
	if err := w.m.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	got = w.waitRelease(r.ID, "ended", func(r slipway.Release) bool { return r.Phase.Terminal() })
	if got.Phase != slipway.PhaseCompleted || w.version("production", "web") != "v2" {
		t.Fatalf("once production runs: %s (%s), production runs %q; want Completed and v2", got.Phase, got.Reason, w.version("production", "web"))
	}
	if strings.Contains(got.Stages[1].Waiting, "not running") {
		t.Fatalf("the stage still says %q", got.Stages[1].Waiting)
	}
}
