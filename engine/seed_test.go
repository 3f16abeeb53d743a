package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/slipwaytest"
)

// commitLog is a store that records the events of every successful Commit.
type commitLog struct {
	slipway.Store
	mu      sync.Mutex
	commits [][]string // each commit's event messages
	reads   int        // App and Rollouts reads
}

func (s *commitLog) Commit(ctx context.Context, c *slipway.Change) error {
	if err := s.Store.Commit(ctx, c); err != nil {
		return err
	}
	var msgs []string
	for _, e := range c.Events {
		msgs = append(msgs, e.Message)
	}
	s.mu.Lock()
	s.commits = append(s.commits, msgs)
	s.mu.Unlock()
	return nil
}

func (s *commitLog) App(ctx context.Context, name string) (slipway.AppState, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.App(ctx, name)
}

func (s *commitLog) Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.Rollouts(ctx, app, limit)
}

// TestApply_SeedsTheWorker: a worker whose app and new rollout apply just wrote starts from
// them, without reading them back; the rollout carries on as it would have.
func TestApply_SeedsTheWorker(t *testing.T) {
	h := newHarness(t)
	st := canary(slipway.Step{SetWeight: intp(50)})
	h.apply(slipway.Set{Apps: []slipway.App{app("web", "v1", 2, st)}})
	h.waitPhase("web", "web-1", slipway.PhaseCompleted)

	h.stop()
	log := &commitLog{}
	h.start(func(s slipway.Store) slipway.Store { log.Store = s; return log }, nil)
	// The restarted engine's worker reads the app and its rollouts once each when it starts
	// (nothing else reads through log: Status would); wait for those two reads.
	reads := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		return log.reads
	}
	slipwaytest.Eventually(t, 10*time.Second, "the restarted engine's reads of web and its rollouts", func() bool { return reads() >= 2 })
	before := reads()

	h.apply(slipway.Set{Apps: []slipway.App{app("web", "v2", 2, st)}})
	// Wait on the store itself: Status would read through the engine's store.
	slipwaytest.Eventually(t, 10*time.Second, "web-2 completed in the store", func() bool {
		r, err := h.store.Rollout(context.Background(), "web-2")
		return err == nil && r.Phase == slipway.PhaseCompleted
	})
	// Apply itself reads the app and its latest rollout once each; the worker reads neither.
	if n := reads() - before; n != 2 {
		t.Errorf("reads of the app and its rollouts after the apply = %d, want 2 (apply's own)", n)
	}
}
