package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// storedFirst is a platform that checks, on every Apply, that the canary weight it is told
// is no more than the one stored for the app's latest rollout: a decision reaches the
// platform only once it is committed.
type storedFirst struct {
	slipway.Platform
	store slipway.StateReader
	t     *testing.T
}

func (p storedFirst) Apply(ctx context.Context, d slipway.Desired) error {
	rs, err := p.store.Rollouts(ctx, d.App, 1)
	if err != nil {
		return err
	}
	if len(rs) == 1 {
		r := rs[0]
		for _, w := range d.Split.Weights {
			if w.Revision == r.To && r.From != "" && !r.Phase.Terminal() && w.Weight > r.Weight {
				p.t.Errorf("platform told weight %d for %s before the store held it (stored %d, step %d)", w.Weight, r.To, r.Weight, r.Step)
			}
		}
	}
	return p.Platform.Apply(ctx, d)
}

// TestWorker_ChainsDecisionsThePlatformNeedNotSee: the end of a pause changes nothing the
// platform is told, so it is committed together with the next step's weight, in one commit,
// and the platform hears of the weight only after that commit.
func TestWorker_ChainsDecisionsThePlatformNeedNotSee(t *testing.T) {
	h := newHarness(t)
	pause := slipway.Duration(30 * time.Millisecond)
	st := canary(
		slipway.Step{SetWeight: intp(20)},
		slipway.Step{Pause: &slipway.PauseStep{Duration: pause}},
		slipway.Step{SetWeight: intp(50)},
		slipway.Step{Pause: &slipway.PauseStep{Duration: pause}},
	)
	h.apply(slipway.Set{Apps: []slipway.App{app("web", "v1", 2, st)}})
	h.waitPhase("web", "web-1", slipway.PhaseCompleted)

	h.stop()
	log := &commitLog{}
	h.start(func(s slipway.Store) slipway.Store { log.Store = s; return log },
		func(p slipway.Platform) slipway.Platform { return storedFirst{Platform: p, store: h.store, t: t} })
	h.apply(slipway.Set{Apps: []slipway.App{app("web", "v2", 2, st)}})
	h.waitPhase("web", "web-2", slipway.PhaseCompleted)

	log.mu.Lock()
	defer log.mu.Unlock()
	chained := slices.IndexFunc(log.commits, func(msgs []string) bool {
		return len(msgs) == 2 && strings.HasPrefix(msgs[0], "step 2/4 done") && msgs[1] == "canary weight 50%"
	})
	if chained < 0 {
		t.Fatalf("no commit carries the end of the pause and the next weight together: %q", log.commits)
	}
	// Every decision is recorded, each once.
	var all []string
	for _, msgs := range log.commits {
		all = append(all, msgs...)
	}
	for _, want := range []string{"canary weight 20%", "step 1/4 done", "step 2/4 done", "canary weight 50%", "step 3/4 done", "step 4/4 done", "canary weight 100%"} {
		n := 0
		for _, m := range all {
			if strings.HasPrefix(m, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q recorded %d times, want once: %q", want, n, all)
		}
	}
}
