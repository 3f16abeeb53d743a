package analysis

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"slipway.dev/slipway"
)

// memStore is a small in-memory slipway.Store for the Runner's tests: it keeps analysis runs
// (as JSON, so that no caller shares memory with it) and events, checks versions like the
// real store, and reports ENOTFOUND for every other record, of which it keeps none. The
// Runner's tests against the real store are in sqlite_test.go.
type memStore struct {
	mu     sync.Mutex
	runs   map[string][]byte
	events []slipway.Event
	// beforeCommit, when set, runs (without the lock) before each Commit, with the commit's
	// number from 1; it may change the store to make the commit conflict.
	beforeCommit func(n int)
	commits      int
}

var _ slipway.Store = (*memStore)(nil)

func newMemStore(tb testing.TB, runs ...slipway.AnalysisRun) *memStore {
	tb.Helper()
	s := &memStore{runs: map[string][]byte{}}
	if len(runs) > 0 {
		if err := s.Commit(context.Background(), &slipway.Change{Runs: runs}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

func (s *memStore) Commit(ctx context.Context, c *slipway.Change) error {
	s.mu.Lock()
	s.commits++
	n, hook := s.commits, s.beforeCommit
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(c.Apps)+len(c.DeleteApps)+len(c.Templates)+len(c.DeleteTemplates)+len(c.Revisions)+len(c.Rollouts) > 0 {
		return slipway.Errorf(slipway.EINVALID, "memStore keeps analysis runs and events only")
	}
	for _, run := range c.Runs {
		var stored int64
		if b, ok := s.runs[run.ID]; ok {
			var cur slipway.AnalysisRun
			if err := json.Unmarshal(b, &cur); err != nil {
				return err
			}
			stored = cur.Version
		} else if run.Version != 0 {
			return slipway.Errorf(slipway.ENOTFOUND, "analysis run %s not found", run.ID)
		}
		if run.Version != stored {
			return slipway.Errorf(slipway.ECONFLICT, "analysis run %s changed: version %d, not %d", run.ID, stored, run.Version)
		}
	}
	for i := range c.Runs {
		c.Runs[i].Version++
		b, err := json.Marshal(c.Runs[i])
		if err != nil {
			return err
		}
		s.runs[c.Runs[i].ID] = b
	}
	for i := range c.Events {
		c.Events[i].Seq = int64(len(s.events) + 1)
		s.events = append(s.events, c.Events[i])
	}
	return nil
}

// update changes the stored run id with f, as another writer (the engine) would: when a
// runner commits between its read and its write, it reads again and applies f again.
func (s *memStore) update(tb testing.TB, id string, f func(*slipway.AnalysisRun)) {
	tb.Helper()
	s.mu.Lock()
	hook := s.beforeCommit
	s.beforeCommit = nil
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.beforeCommit = hook
		s.mu.Unlock()
	}()
	for {
		run, err := s.AnalysisRun(context.Background(), id)
		if err != nil {
			tb.Error(err)
			return
		}
		f(&run)
		err = s.Commit(context.Background(), &slipway.Change{Runs: []slipway.AnalysisRun{run}})
		if slipway.ErrorCode(err) == slipway.ECONFLICT {
			continue
		}
		if err != nil {
			tb.Error(err)
		}
		return
	}
}

func (s *memStore) AnalysisRun(_ context.Context, id string) (slipway.AnalysisRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.runs[id]
	if !ok {
		return slipway.AnalysisRun{}, slipway.Errorf(slipway.ENOTFOUND, "analysis run %s not found", id)
	}
	var run slipway.AnalysisRun
	err := json.Unmarshal(b, &run)
	return run, err
}

func (s *memStore) FlagAnalysisRuns(context.Context, string) ([]slipway.AnalysisRun, error) {
	return nil, nil
}

func (s *memStore) AnalysisRuns(ctx context.Context, rollout string) ([]slipway.AnalysisRun, error) {
	s.mu.Lock()
	var ids []string
	for id := range s.runs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var out []slipway.AnalysisRun
	for _, id := range ids {
		run, err := s.AnalysisRun(ctx, id)
		if err != nil {
			return nil, err
		}
		if run.Rollout == rollout {
			out = append(out, run)
		}
	}
	return out, nil
}

func (s *memStore) Events(_ context.Context, _ slipway.EventFilter) ([]slipway.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slipway.Event(nil), s.events...), nil
}

func (s *memStore) App(_ context.Context, name string) (slipway.AppState, error) {
	return slipway.AppState{}, slipway.Errorf(slipway.ENOTFOUND, "app %s not found", name)
}

func (s *memStore) Apps(context.Context) ([]slipway.AppState, error) { return nil, nil }

func (s *memStore) Template(_ context.Context, name string) (slipway.AnalysisTemplate, error) {
	return slipway.AnalysisTemplate{}, slipway.Errorf(slipway.ENOTFOUND, "template %s not found", name)
}

func (s *memStore) Templates(context.Context) ([]slipway.AnalysisTemplate, error) { return nil, nil }

func (s *memStore) Revisions(context.Context, string) ([]slipway.Revision, error) { return nil, nil }

func (s *memStore) Revision(_ context.Context, app, id string) (slipway.Revision, error) {
	return slipway.Revision{}, slipway.Errorf(slipway.ENOTFOUND, "revision %s of %s not found", id, app)
}

func (s *memStore) Rollout(_ context.Context, id string) (slipway.Rollout, error) {
	return slipway.Rollout{}, slipway.Errorf(slipway.ENOTFOUND, "rollout %s not found", id)
}

func (s *memStore) Rollouts(context.Context, string, int) ([]slipway.Rollout, error) { return nil, nil }

func (s *memStore) ActiveRollouts(context.Context) ([]slipway.Rollout, error) { return nil, nil }
