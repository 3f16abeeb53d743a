package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"slipway.dev/slipway"
)

// benchRollouts is the scale the engine must carry: 10,000 concurrent rollouts.
const benchRollouts = 10000

// seed stores apps with n rollouts spread over them (100 rollouts per app), plus as many
// finished ones when withDone, and returns the active rollouts as stored.
func seed(tb testing.TB, s *Store, n int, withDone bool) []slipway.Rollout {
	tb.Helper()
	apps := max(1, n/100)
	c := &slipway.Change{}
	for a := range apps {
		c.Apps = append(c.Apps, testApp(fmt.Sprintf("app-%04d", a)))
	}
	for i := range n {
		app := fmt.Sprintf("app-%04d", i%apps)
		c.Rollouts = append(c.Rollouts, testRollout(fmt.Sprintf("ro-%05d", i), app, i+1, "from", "to"))
	}
	commit(tb, s, c)
	active := c.Rollouts
	if withDone {
		done := &slipway.Change{}
		for i := range n {
			r := testRollout(fmt.Sprintf("done-%05d", i), fmt.Sprintf("app-%04d", i%apps), n+i+1, "a", "b")
			r.Phase = slipway.PhaseCompleted
			done.Rollouts = append(done.Rollouts, r)
		}
		commit(tb, s, done)
	}
	return active
}

// step is one engine-like transition: the rollout moves a step and an event says so.
func step(r *slipway.Rollout, i int) *slipway.Change {
	r.Step = i % 10
	r.Weight = (i * 7) % 100
	return &slipway.Change{
		Rollouts: []slipway.Rollout{*r},
		Events: []slipway.Event{{
			Time: t0, App: r.App, Rollout: r.ID, Kind: slipway.EventRolloutStep,
			Actor: slipway.ActorEngine, Message: "step advanced",
		}},
	}
}

// BenchmarkCommit measures the engine's hot write: one rollout update and one event per
// Commit, against a store holding 10,000 rollouts.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		s := openTest(b)
		ros := seed(b, s, benchRollouts, false)
		i := 0
		for b.Loop() {
			r := &ros[i%len(ros)]
			c := step(r, i)
			if err := s.Commit(ctx, c); err != nil {
				b.Fatal(err)
			}
			r.Version = c.Rollouts[0].Version
			i++
		}
	})
	// 32 goroutines per CPU: the engine runs one goroutine per rollout, so many Commits
	// are in flight at once, and group commit batches them.
	b.Run("parallel", func(b *testing.B) {
		s := openTest(b)
		ros := seed(b, s, benchRollouts, false)
		var next atomic.Int64
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine owns a disjoint set of rollouts, as the engine's one goroutine
			// per rollout does.
			const block = 64
			first := int(next.Add(1)-1) * block
			if first+block > len(ros) {
				b.Error("more goroutines than blocks of rollouts")
				return
			}
			i := 0
			for pb.Next() {
				k := first + i%block
				r := &ros[k]
				c := step(r, i)
				if err := s.Commit(ctx, c); err != nil {
					b.Error(err)
					return
				}
				r.Version = c.Rollouts[0].Version
				i++
			}
		})
	})
}

// BenchmarkActiveRollouts measures the engine's startup and resync query: 10,000 active
// rollouts among 10,000 finished ones.
func BenchmarkActiveRollouts(b *testing.B) {
	ctx := context.Background()
	s := openTest(b)
	seed(b, s, benchRollouts, true)
	for b.Loop() {
		ros, err := s.ActiveRollouts(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(ros) != benchRollouts {
			b.Fatalf("active rollouts = %d, want %d", len(ros), benchRollouts)
		}
	}
}

// BenchmarkRollout measures a single-rollout read from parallel readers while nothing
// writes.
func BenchmarkRollout(b *testing.B) {
	ctx := context.Background()
	s := openTest(b)
	ros := seed(b, s, benchRollouts, false)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 997
		for pb.Next() {
			if _, err := s.Rollout(ctx, ros[i%len(ros)].ID); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkCommitBatch measures the cost of one engine-like transition (a rollout update
// and the event that records it) when group commit writes it in a batch of size changes
// sharing one transaction, against a store of 10,000 apps with one active rollout each (as
// the engine's scale benchmark has). ns/op is per change, whole batch included.
func BenchmarkCommitBatch(b *testing.B) {
	for _, size := range []int{1, 8, 32, 128, 512} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := openTest(b)
			ros := seedApps(b, s, benchRollouts)
			i := 0
			batch := make([]*pending, 0, size)
			flush := func() {
				s.writeBatch(batch)
				for _, p := range batch {
					if p.err != nil {
						b.Fatal(p.err)
					}
				}
				for k, p := range batch {
					ros[(i-len(batch)+k)%len(ros)].Version = p.res.rollouts[0]
				}
				batch = batch[:0]
			}
			for b.Loop() {
				batch = append(batch, &pending{c: step(&ros[i%len(ros)], i), done: make(chan struct{})})
				i++
				if len(batch) == size {
					flush()
				}
			}
			if len(batch) > 0 {
				flush()
			}
		})
	}
}

// seedApps stores n apps with one active rollout each and returns the rollouts as stored.
func seedApps(tb testing.TB, s *Store, n int) []slipway.Rollout {
	tb.Helper()
	c := &slipway.Change{}
	for i := range n {
		name := fmt.Sprintf("app-%05d", i)
		c.Apps = append(c.Apps, testApp(name))
		c.Rollouts = append(c.Rollouts, testRollout(name+"-1", name, 1, "from", "to"))
	}
	commit(tb, s, c)
	return c.Rollouts
}
