package sqlite

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"slipway.dev/slipway"
)

// TestStore_ConcurrentCommitsLoseNoUpdate has many goroutines increment one rollout's
// counter by read-modify-write, retrying on ECONFLICT: optimistic versions must let every
// increment through exactly once.
func TestStore_ConcurrentCommitsLoseNoUpdate(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	commit(t, s, &slipway.Change{
		Apps:     []slipway.AppState{testApp("web")},
		Rollouts: []slipway.Rollout{testRollout("web-1", "web", 1, "", "r")},
	})
	start, err := s.Rollout(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}

	const workers, perWorker = 8, 25
	var (
		wg        sync.WaitGroup
		conflicts atomic.Int64
		errs      = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				for {
					r, err := s.Rollout(ctx, "web-1")
					if err != nil {
						errs <- err
						return
					}
					r.Attempt++
					err = s.Commit(ctx, &slipway.Change{
						Rollouts: []slipway.Rollout{r},
						Events:   []slipway.Event{{App: "web", Rollout: "web-1", Kind: slipway.EventRolloutRetried, Actor: fmt.Sprint(w), Message: fmt.Sprint(i)}},
					})
					if slipway.ErrorCode(err) == slipway.ECONFLICT {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("worker: %v", err)
	}

	end, err := s.Rollout(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := end.Attempt-start.Attempt, workers*perWorker; got != want {
		t.Fatalf("increments = %d, want %d", got, want)
	}
	if got, want := end.Version, start.Version+workers*perWorker; got != int64(want) {
		t.Fatalf("version = %d, want %d", got, want)
	}
	evs, err := s.Events(ctx, slipway.EventFilter{Rollout: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != workers*perWorker {
		t.Fatalf("events = %d, want one per successful commit (%d)", len(evs), workers*perWorker)
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}
