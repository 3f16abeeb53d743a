package sim_test

import (
	"context"
	"fmt"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/sim"
)

// benchApps is the number of apps in BenchmarkApplyObserve, as in the 10,000-rollout target.
const benchApps = 10_000

// BenchmarkApplyObserve measures one reconcile against the sim: an Apply and an Observe of one
// of 10,000 canary apps. "steady" re-applies what is already live (the common case); "shift"
// moves the canary weight every time, so each Apply records a split op.
func BenchmarkApplyObserve(b *testing.B) {
	ctx := context.Background()
	setup := func(b *testing.B) (*sim.Platform, []slipway.Desired) {
		p := sim.New(sim.Config{MaxOps: 64})
		ds := make([]slipway.Desired, benchApps)
		for i := range ds {
			app := fmt.Sprintf("app-%05d", i)
			v1, v2 := revs(app)
			ds[i] = slipway.Desired{
				App:       app,
				Revisions: []slipway.Placement{place(v1, 3), place(v2, 1)},
				Split:     slipway.Split{Weights: weights(v1, 90, v2, 10)},
			}
			if err := p.Apply(ctx, ds[i]); err != nil {
				b.Fatal(err)
			}
		}
		return p, ds
	}
	b.Run("steady", func(b *testing.B) {
		p, ds := setup(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d := ds[i%benchApps]
			i++
			if err := p.Apply(ctx, d); err != nil {
				b.Fatal(err)
			}
			if _, err := p.Observe(ctx, d.App); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shift", func(b *testing.B) {
		p, ds := setup(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d := ds[i%benchApps]
			w := 20 - (i/benchApps)%2*10 // 20 on the first pass over the apps, 10 on the next...
			d.Split = slipway.Split{Weights: []slipway.Weight{
				{Revision: d.Revisions[0].Revision.ID, Weight: 100 - w},
				{Revision: d.Revisions[1].Revision.ID, Weight: w},
			}}
			i++
			if err := p.Apply(ctx, d); err != nil {
				b.Fatal(err)
			}
			if _, err := p.Observe(ctx, d.App); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReplicas measures the platform's work for one app of n replicas through a
// rollout: start n instances of v1, start n of v2 beside them, retire v1, scale v2 down to
// n/2, observing after each step, then remove the app. Every step is linear in n, so
// ns/replica should stay about flat from 10 to 10,000 replicas (the server's maximum).
func BenchmarkReplicas(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 100, 1000, 10_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			p := sim.New(sim.Config{MaxOps: 64})
			v1, v2 := revs("app")
			steps := []slipway.Desired{
				{App: "app", Revisions: []slipway.Placement{place(v1, n)}, Split: slipway.Split{Weights: weights(v1, 100)}},
				{App: "app", Revisions: []slipway.Placement{place(v1, n), place(v2, n)}, Split: slipway.Split{Weights: weights(v1, 50, v2, 50)}},
				{App: "app", Revisions: []slipway.Placement{place(v2, n)}, Split: slipway.Split{Weights: weights(v2, 100)}},
				{App: "app", Revisions: []slipway.Placement{place(v2, n/2)}, Split: slipway.Split{Weights: weights(v2, 100)}},
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, d := range steps {
					if err := p.Apply(ctx, d); err != nil {
						b.Fatal(err)
					}
					if _, err := p.Observe(ctx, "app"); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Remove(ctx, "app"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/replica")
		})
	}
}
