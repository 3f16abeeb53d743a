package local

import (
	"fmt"
	"testing"

	"slipway.dev/slipway"
)

// BenchmarkConverge measures the supervisor's bookkeeping for an app of n replicas, without
// processes: planning n new instances, building the proxy table of n ready ones, and
// planning the scale-down to n/2 with the draining half checked against the table in
// effect. Each should grow about linearly with n (docs/benchmarks.md).
func BenchmarkConverge(b *testing.B) {
	rev := slipway.Revision{App: "web", ID: "r1", Version: "v1", Spec: slipway.RevisionSpec{Run: slipway.RunSpec{Command: "true"}}}
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			p := New(Config{})
			for b.Loop() {
				a := newApp(p, "web")
				a.desired = &slipway.Desired{App: "web", Revisions: []slipway.Placement{{Revision: rev, Replicas: n}},
					Split: slipway.Split{Weights: []slipway.Weight{{Revision: rev.ID, Weight: 100}}}}
				a.plan()
				for i, in := range a.instances {
					in.ready, in.port = true, 10000+i
				}
				a.status.Table = a.table()
				a.desired.Revisions[0].Replicas = n / 2
				a.plan()
				ids := tableIDs(a.status.Table)
				left := 0
				for _, in := range a.instances {
					if in.leaving && ids[in.id] {
						left++
					}
				}
				if left != n-n/2 {
					b.Fatalf("%d leaving, want %d", left, n-n/2)
				}
				for _, in := range a.instances {
					in.cancel()
				}
			}
		})
	}
}
