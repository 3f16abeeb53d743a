package engine

import (
	"fmt"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// BenchmarkReplicas measures what a reconcile pass computes besides the store and the
// platform, for one app of n replicas mid-rollout: the next decision (Next), the desired
// state (Desired), the traffic guard (Guard) and the drift check (DriftOf), against an
// observation of all n instances of the stable revision and the new one's. Each is linear in
// the instances observed, so ns/replica should stay about flat from 10 to 10,000 replicas
// (the server's maximum).
func BenchmarkReplicas(b *testing.B) {
	for _, strategy := range []string{"canary", "rolling"} {
		for _, n := range []int{10, 100, 1000, 10_000} {
			b.Run(fmt.Sprintf("%s/n=%d", strategy, n), func(b *testing.B) {
				st, r, in, revs := replicasCase(strategy, n)
				now := t0.Add(time.Minute)
				b.ReportAllocs()
				for b.Loop() {
					next, _ := Next(r, in, now)
					d, _ := Guard(Desired(st, &next, revs), in.Observed, revs)
					_ = DriftOf(d, in.Observed)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/replica")
			})
		}
	}
}

// replicasCase returns an app of n replicas halfway through a rollout from v1 to v2, and
// what the platform reports for it: a canary at 50% with half its instances ready, or a
// rolling update with half the instances moved.
func replicasCase(strategy string, n int) (slipway.AppState, slipway.Rollout, Input, map[string]slipway.Revision) {
	var s slipway.Strategy
	switch strategy {
	case "canary":
		s = slipway.Strategy{Canary: &slipway.CanaryStrategy{Steps: []slipway.Step{
			{SetWeight: intp(50)}, {Pause: &slipway.PauseStep{Duration: dur(time.Hour)}},
		}}}
	case "rolling":
		s = slipway.Strategy{Rolling: &slipway.RollingStrategy{MinReady: dur(time.Second)}}
	}
	app := testApp(s, n)
	r := newTestRollout(app, "v1")
	half := n / 2
	switch strategy {
	case "canary":
		r.Weight = 50
	case "rolling":
		r.OldReplicas, r.NewReplicas, r.Weight = n-half, half, 50
	}
	in := Input{App: app, Observed: observed(RolloutSplit(r), map[string]int{"v1": n - half, "v2": half})}
	if strategy == "canary" {
		in.Observed = observed(RolloutSplit(r), map[string]int{"v1": n, "v2": CanaryReplicas(r, n)})
	}
	revs := map[string]slipway.Revision{
		"v1": {App: app.Name, ID: "v1", Version: "v1"},
		"v2": {App: app.Name, ID: "v2", Version: "v2"},
	}
	return slipway.AppState{Spec: app, Stable: "v1"}, r, in, revs
}
