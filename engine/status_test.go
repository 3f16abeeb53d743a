package engine_test

import (
	"context"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/sqlite"
)

// racyReader commits change (once) between the app's first read and the rollouts' read:
// a transition landing while Status reads.
type racyReader struct {
	slipway.Store
	change func()
	done   bool
}

func (r *racyReader) Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error) {
	if !r.done {
		r.done = true
		r.change()
	}
	return r.Store.Rollouts(ctx, app, limit)
}

// A transition that moves the stable revision and ends the rollout together commits
// between the reads of the app and of its rollout: the two come back as that commit left
// them, never the old stable with the ended rollout.
func TestStatus_AppAndRolloutFromOneCommit(t *testing.T) {
	h := newHarness(t)
	h.apply(slipway.Set{Apps: []slipway.App{app("one", "v1", 1, slipway.Strategy{Rolling: &slipway.RollingStrategy{}})}})
	h.waitPhase("one", "one-1", slipway.PhaseCompleted)
	h.stop() // nothing else writes from here on
	store, err := sqlite.Open(h.path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	st, err := store.App(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := store.Rollouts(ctx, "one", 1)
	if err != nil || len(rs) != 1 {
		t.Fatalf("latest rollout: %v %v", rs, err)
	}
	r := &rs[0]
	rr := &racyReader{Store: store, change: func() {
		app2, r2 := st, *r
		app2.Stable = "moved"
		r2.Reason = "moved with the app"
		if err := store.Commit(ctx, &slipway.Change{Apps: []slipway.AppState{app2}, Rollouts: []slipway.Rollout{r2}}); err != nil {
			t.Fatal(err)
		}
	}}
	got, latest, err := engine.AppAndRollout(ctx, rr, "one")
	if err != nil {
		t.Fatal(err)
	}
	if got.Stable != "moved" || latest.Reason != "moved with the app" {
		t.Fatalf("read stable %q with rollout reason %q: not one commit", got.Stable, latest.Reason)
	}
}
