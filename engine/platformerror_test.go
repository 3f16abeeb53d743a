package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// refusing is a platform that refuses every Apply with err until healed.
type refusing struct {
	slipway.Platform
	mu  sync.Mutex
	err error
}

func (p *refusing) Apply(ctx context.Context, d slipway.Desired) error {
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.Platform.Apply(ctx, d)
}

func (p *refusing) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// TestEngine_PlatformRefusalsAreEvents: a platform that refuses to converge an app (a
// forbidden write, say) is recorded once as a platform.error event with the platform's words,
// however often the engine retries; the rollout goes on once the platform accepts again.
func TestEngine_PlatformRefusalsAreEvents(t *testing.T) {
	h := newHarness(t)
	h.stop()
	p := &refusing{}
	h.start(nil, func(pl slipway.Platform) slipway.Platform { p.Platform = pl; return p })
	const why = "replicasets.apps is forbidden for the service account; grant it in deploy/kubernetes/rbac.yaml"
	p.set(slipway.Errorf(slipway.EUNAVAILABLE, why))
	h.apply(slipway.Set{Apps: []slipway.App{app("web", "v1", 2, canary(slipway.Step{SetWeight: intp(50)}))}})
	deadline := time.Now().Add(10 * time.Second)
	var errs []slipway.Event
	for time.Now().Before(deadline) {
		errs = errs[:0]
		for _, e := range h.events("web") {
			if e.Kind == slipway.EventPlatformError {
				errs = append(errs, e)
			}
		}
		if len(errs) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(errs) == 0 || !strings.Contains(errs[0].Message, why) {
		t.Fatalf("platform.error events %+v, want one with the platform's words", errs)
	}
	time.Sleep(300 * time.Millisecond) // several retries
	n := 0
	for _, e := range h.events("web") {
		if e.Kind == slipway.EventPlatformError {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d platform.error events for one refusal retried, want 1", n)
	}
	p.set(nil)
	h.waitPhase("web", "web-1", slipway.PhaseCompleted)
}
