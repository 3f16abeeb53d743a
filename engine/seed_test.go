package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
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
	// The restarted engine reads each app once when it starts; wait for that to settle.
	h.waitPhase("web", "web-1", slipway.PhaseCompleted)
	time.Sleep(20 * time.Millisecond)
	log.mu.Lock()
	before := log.reads
	log.mu.Unlock()

	h.apply(slipway.Set{Apps: []slipway.App{app("web", "v2", 2, st)}})
	// Wait on the store itself: Status would read through the engine's store.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r, err := h.store.Rollout(context.Background(), "web-2")
		if err == nil && r.Phase == slipway.PhaseCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web-2 did not complete: %+v %v", r, err)
		}
	}
	log.mu.Lock()
	reads := log.reads - before
	log.mu.Unlock()
	// Apply itself reads the app and its latest rollout once each; the worker reads neither.
	if reads != 2 {
		t.Errorf("reads of the app and its rollouts after the apply = %d, want 2 (apply's own)", reads)
	}
}
