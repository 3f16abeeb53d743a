package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"slipway.dev/slipway"
)

// timedStore records how long each store call of the scale benchmark takes, to tell where
// reconcile time goes.
type timedStore struct {
	slipway.Store
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (s *timedStore) rec(name string, start time.Time) {
	s.mu.Lock()
	s.d[name] = append(s.d[name], time.Since(start))
	s.mu.Unlock()
}

func (s *timedStore) Commit(ctx context.Context, c *slipway.Change) error {
	defer s.rec("Commit", time.Now())
	return s.Store.Commit(ctx, c)
}

func (s *timedStore) App(ctx context.Context, name string) (slipway.AppState, error) {
	defer s.rec("App", time.Now())
	return s.Store.App(ctx, name)
}

func (s *timedStore) Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error) {
	defer s.rec("Rollouts", time.Now())
	return s.Store.Rollouts(ctx, app, limit)
}

func (s *timedStore) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ""
	for name, ds := range s.d {
		slices.Sort(ds)
		out += fmt.Sprintf("%s n=%d p50=%v p99=%v max=%v; ", name, len(ds), ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1])
	}
	return out
}
