package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/slipwaytest"
)

// errCrashed is what a crashed engine's store and platform answer: nothing it does after the
// crash instant reaches the world.
var errCrashed = errors.New("crashed")

// crashSwitch abandons an engine without a clean shutdown: from the instant it trips, every
// store and platform call of that engine fails, and its context is cancelled.
type crashSwitch struct {
	tripped atomic.Bool
	done    chan struct{} // closed when the switch trips
	once    sync.Once
	mu      sync.Mutex
	cancel  context.CancelFunc
	// afterCommits trips the switch right after the Nth commit that carries a rollout event
	// (a step boundary: the decision is stored, nothing has been acted on).
	afterCommits int
	commits      atomic.Int64
}

func (c *crashSwitch) trip() {
	c.once.Do(func() {
		c.tripped.Store(true)
		close(c.done)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cancel != nil {
			c.cancel()
		}
	})
}

// arm hands the switch the engine's cancel func (the engine may already have crashed).
func (c *crashSwitch) arm(cancel context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancel = cancel
	if c.tripped.Load() {
		cancel()
	}
}

type crashStore struct {
	slipway.Store
	sw *crashSwitch
}

func (s crashStore) Commit(ctx context.Context, ch *slipway.Change) error {
	if s.sw.tripped.Load() {
		return errCrashed
	}
	if err := s.Store.Commit(ctx, ch); err != nil {
		return err
	}
	for _, e := range ch.Events {
		if strings.HasPrefix(e.Kind, "rollout.") && e.Actor == slipway.ActorEngine {
			if n := s.sw.commits.Add(1); s.sw.afterCommits > 0 && n == int64(s.sw.afterCommits) {
				s.sw.trip()
			}
			break
		}
	}
	return nil
}

type crashPlatform struct {
	slipway.Platform
	sw *crashSwitch
}

func (p crashPlatform) Apply(ctx context.Context, d slipway.Desired) error {
	if p.sw.tripped.Load() {
		return errCrashed
	}
	return p.Platform.Apply(ctx, d)
}

func (p crashPlatform) Observe(ctx context.Context, app string) (slipway.Observed, error) {
	if p.sw.tripped.Load() {
		return slipway.Observed{}, errCrashed
	}
	return p.Platform.Observe(ctx, app)
}

// crashStrategies are the rollouts the crash test runs: each goes v1 -> v2 and completes.
func crashStrategies(url string) map[string]slipway.Set {
	no := false
	pause := slipway.Duration(10 * time.Millisecond)
	tmpl := errorRateTemplate(url)
	mk := func(st slipway.Strategy) slipway.Set {
		return slipway.Set{Apps: []slipway.App{app("svc", "v1", 4, st)}, Templates: []slipway.AnalysisTemplate{tmpl}}
	}
	return map[string]slipway.Set{
		"rolling": mk(slipway.Strategy{Rolling: &slipway.RollingStrategy{MaxSurge: slipway.Count(1), MaxUnavailable: slipway.Count(0)}}),
		"blueGreen": mk(slipway.Strategy{BlueGreen: &slipway.BlueGreenStrategy{AutoPromote: &no,
			PrePromotionAnalysis:  &slipway.AnalysisRef{Templates: []string{"error-rate"}},
			PostPromotionAnalysis: &slipway.AnalysisRef{Templates: []string{"error-rate"}}}}),
		"canary": mk(canary(
			slipway.Step{SetWeight: intp(25)},
			slipway.Step{Pause: &slipway.PauseStep{Duration: pause}},
			slipway.Step{Analysis: &slipway.AnalysisRef{Templates: []string{"error-rate"}}},
			slipway.Step{SetCanaryScale: &slipway.CanaryScale{Replicas: intp(3)}},
			slipway.Step{SetHeaderRoute: &slipway.HeaderRoute{Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}}},
			slipway.Step{SetWeight: intp(75)},
			slipway.Step{SetHeaderRoute: &slipway.HeaderRoute{Name: "beta"}},
		)),
		// An experiment starts a baseline beside the canary and removes it: each once.
		"experiment": mk(canary(
			slipway.Step{SetWeight: intp(25)},
			slipway.Step{Experiment: &slipway.Experiment{Weight: 20, Duration: pause, Analysis: &slipway.AnalysisRef{Templates: []string{"error-rate"}}}},
			slipway.Step{SetWeight: intp(75)},
		)),
	}
}

func withVersion(s slipway.Set, v string) slipway.Set {
	a := s.Apps[0]
	a.Version = v
	a.Run.Args = []string{"--version", v, "--port", "${PORT}"}
	s.Apps = []slipway.App{a}
	return s
}

// crashRun deploys v1, then rolls out v2, crashing the engine as crash says and restarting it
// on the same data directory until the rollout ends. It returns the rollout's end status and
// the platform's operation log for the v2 rollout.
func crashRun(t *testing.T, set slipway.Set, crash func(h *harness, sw *crashSwitch, attempt int)) (slipway.AppStatus, []string) {
	t.Helper()
	h := newHarness(t)
	h.apply(withVersion(set, "v1"))
	h.waitPhase("svc", "svc-1", slipway.PhaseCompleted)
	before := len(h.sim.Ops("svc"))
	h.apply(withVersion(set, "v2"))
	for attempt := 0; ; attempt++ {
		if attempt > 60 {
			t.Fatal("rollout never ended across restarts")
		}
		// Restart with a crash switch armed for this attempt.
		h.stop()
		sw := &crashSwitch{done: make(chan struct{})}
		crash(h, sw, attempt)
		h.start(func(s slipway.Store) slipway.Store { return crashStore{s, sw} },
			func(p slipway.Platform) slipway.Platform { return crashPlatform{p, sw} })
		sw.arm(h.cancel)
		// Let it run until it crashes or a short while passes.
		select {
		case <-time.After(200 * time.Millisecond):
		case <-sw.done:
		}
		if sw.tripped.Load() {
			continue
		}
		s, err := h.eng.Status(context.Background(), "svc")
		if err != nil && sw.tripped.Load() {
			continue // the switch tripped after the check above: Status saw the crash
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.Rollout.Phase == slipway.PhasePaused && s.Rollout.Cause == slipway.PauseApproval {
			_, err := h.eng.Operate(context.Background(), slipway.Operation{Kind: slipway.OpPromote, App: "svc"})
			if err != nil && sw.tripped.Load() {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if s.Rollout.Phase.Terminal() && !sw.tripped.Load() {
			break
		}
	}
	// The last engine may still trip its switch after the check above: finish with a clean one.
	h.stop()
	h.start(nil, nil)
	s := h.waitRollout("svc", "end", func(r slipway.RolloutStatus) bool { return r.Phase.Terminal() })
	// The platform converges to the end state (no drift left) before the log is read.
	slipwaytest.Eventually(t, 10*time.Second, "svc to converge to its end state", func() bool {
		st, err := h.eng.Status(context.Background(), "svc")
		return err == nil && len(st.Drift) == 0
	})
	var ops []string
	for _, op := range h.sim.Ops("svc")[before:] {
		ops = append(ops, fmt.Sprintf("%s %s %s %s", op.Kind, op.Revision, op.Instance, op.Detail))
	}
	return s, ops
}

// TestEngine_CrashAnywhereResumes abandons the engine at every step boundary and at random
// instants, restarts it on the same SQLite file, and checks that the rollout ends the same
// way with every platform operation done exactly once.
func TestEngine_CrashAnywhereResumes(t *testing.T) {
	chk := newCheckServer(t, 0.01)
	for name, set := range crashStrategies(chk.URL) {
		t.Run(name, func(t *testing.T) {
			ref, refOps := crashRun(t, set, func(*harness, *crashSwitch, int) {})
			if ref.Rollout.Phase != slipway.PhaseCompleted {
				t.Fatalf("reference run: %+v", ref.Rollout)
			}
			check := func(t *testing.T, s slipway.AppStatus, ops []string) {
				t.Helper()
				if s.Rollout.Phase != ref.Rollout.Phase || s.Stable.Revision != ref.Stable.Revision {
					t.Fatalf("end state %+v %+v; want %+v %+v", s.Rollout, s.Stable, ref.Rollout, ref.Stable)
				}
				// Each operation is done exactly once: the same operations as an uninterrupted
				// run. A restart may carry out two stored decisions in one converge, so only
				// the order of traffic splits must match, not how starts and stops interleave.
				// A rolling update's weights follow the instances observed ready, which a
				// crash can shift in time; there only the instance operations and the final
				// split must match.
				gotSplits, wantSplits := splits(ops), splits(refOps)
				if name == "rolling" {
					gotSplits, wantSplits = gotSplits[len(gotSplits)-1:], wantSplits[len(wantSplits)-1:]
				}
				if !slices.Equal(sortedCopy(withoutSplits(ops)), sortedCopy(withoutSplits(refOps))) || !slices.Equal(gotSplits, wantSplits) {
					t.Fatalf("platform operations differ from an uninterrupted run:\n got %q\nwant %q", ops, refOps)
				}
			}
			// Every step boundary: crash right after the Nth committed transition.
			for n := 1; n <= 12; n++ {
				t.Run(fmt.Sprintf("after-transition-%d", n), func(t *testing.T) {
					s, ops := crashRun(t, set, func(_ *harness, sw *crashSwitch, attempt int) {
						if attempt == 0 {
							sw.afterCommits = n
						}
					})
					check(t, s, ops)
				})
			}
			// Random instants inside steps, several crashes per rollout.
			rng := rand.New(rand.NewPCG(1, uint64(len(name))))
			for i := range 4 {
				t.Run(fmt.Sprintf("random-%d", i), func(t *testing.T) {
					s, ops := crashRun(t, set, func(_ *harness, sw *crashSwitch, attempt int) {
						if attempt < 3 {
							d := time.Duration(rng.IntN(60)) * time.Millisecond
							time.AfterFunc(d, sw.trip)
						}
					})
					check(t, s, ops)
				})
			}
		})
	}
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

func splits(ops []string) []string {
	var out []string
	for _, op := range ops {
		if strings.HasPrefix(op, "split ") {
			out = append(out, op)
		}
	}
	return out
}

func withoutSplits(ops []string) []string {
	var out []string
	for _, op := range ops {
		if !strings.HasPrefix(op, "split ") {
			out = append(out, op)
		}
	}
	return out
}
