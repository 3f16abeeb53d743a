package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// concurrency is a platform that records how many Apply calls are in progress at once. Each
// takes a little while, so that passes that may overlap do. (Only passes apply; Status,
// which the test polls, observes.)
type concurrency struct {
	slipway.Platform
	mu       sync.Mutex
	now, top int
}

func (p *concurrency) enter() {
	p.mu.Lock()
	p.now++
	p.top = max(p.top, p.now)
	p.mu.Unlock()
}

func (p *concurrency) exit() {
	p.mu.Lock()
	p.now--
	p.mu.Unlock()
}

func (p *concurrency) Apply(ctx context.Context, d slipway.Desired) error {
	p.enter()
	defer p.exit()
	// A slow Apply on purpose: passes that overlap would show in top, so the bound is tested
	// against passes that really do take time.
	time.Sleep(2 * time.Millisecond)
	return p.Platform.Apply(ctx, d)
}

// TestEngine_ReconcilersBoundThePassesInProgress: with Reconcilers 2, no more than two
// reconcile passes apply to the platform at once, and every rollout still completes.
func TestEngine_ReconcilersBoundThePassesInProgress(t *testing.T) {
	h := newHarness(t)
	h.stop()
	h.reconcilers = 2
	p := &concurrency{}
	h.start(nil, func(pl slipway.Platform) slipway.Platform { p.Platform = pl; return p })
	st := canary(slipway.Step{SetWeight: intp(50)})
	for _, version := range []string{"v1", "v2"} {
		var set slipway.Set
		for i := range 8 {
			set.Apps = append(set.Apps, app(fmt.Sprintf("app-%d", i), version, 2, st))
		}
		h.apply(set)
		for i := range 8 {
			id := "-1"
			if version == "v2" {
				id = "-2"
			}
			name := fmt.Sprintf("app-%d", i)
			h.waitPhase(name, name+id, slipway.PhaseCompleted)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.top > 2 {
		t.Fatalf("%d platform applies at once, want at most 2 (Reconcilers)", p.top)
	}
}
