package sqlite

import (
	"context"
	"errors"
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
	if got, want := end.Version, start.Version+workers*perWorker; got != want {
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

// TestStore_BatchIsolatesChanges writes several Changes in one batch, as group commit does
// under load: a failing Change leaves no trace and does not disturb the others.
func TestStore_BatchIsolatesChanges(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	seedC := &slipway.Change{
		Apps:     []slipway.AppState{testApp("web")},
		Rollouts: []slipway.Rollout{testRollout("web-1", "web", 1, "", "r")},
	}
	commit(t, s, seedC)
	// An unexpected database error, on demand: the trigger aborts any event saying "boom".
	if _, err := s.w.Exec(`CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.message = 'boom'
		BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}

	ev := func(msg string) []slipway.Event { return []slipway.Event{testEvent("web", "", msg)} }
	update := seedC.Rollouts[0]
	update.Weight = 42
	changes := []*slipway.Change{
		{Apps: []slipway.AppState{testApp("a")}, Events: ev("e1")},
		{Rollouts: []slipway.Rollout{testRollout("web-1", "web", 1, "", "r")}, Events: ev("e2")}, // exists
		{Rollouts: []slipway.Rollout{update}, Events: ev("e3")},
		{Apps: []slipway.AppState{testApp("c")}, Events: ev("boom")},
		{Rollouts: []slipway.Rollout{update}, Events: ev("e5")}, // stale after e3's change
		{Apps: []slipway.AppState{testApp("b")}, Events: ev("e6")},
	}
	var batch []*pending
	for _, c := range changes {
		batch = append(batch, &pending{c: c, done: make(chan struct{})})
	}
	s.writeBatch(batch)

	wantCodes := []string{"", slipway.ECONFLICT, "", slipway.EINTERNAL, slipway.ECONFLICT, ""}
	for i, p := range batch {
		select {
		case <-p.done:
		default:
			t.Fatalf("change %d: done not closed", i)
		}
		if got := slipway.ErrorCode(p.err); got != wantCodes[i] {
			t.Errorf("change %d: error %v, want code %q", i, p.err, wantCodes[i])
		}
	}
	evs, err := s.Events(ctx, slipway.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range evs {
		msgs = append(msgs, e.Message)
	}
	assertEqual(t, "events", msgs, []string{"e1", "e3", "e6"})
	if batch[0].res.seqs[0] != evs[0].Seq || batch[2].res.seqs[0] != evs[1].Seq || batch[5].res.seqs[0] != evs[2].Seq {
		t.Errorf("reported seqs %d %d %d, stored %d %d %d", batch[0].res.seqs[0], batch[2].res.seqs[0],
			batch[5].res.seqs[0], evs[0].Seq, evs[1].Seq, evs[2].Seq)
	}
	r, err := s.Rollout(ctx, "web-1")
	if err != nil || r.Weight != 42 || r.Version != 2 || batch[2].res.rollouts[0] != 2 {
		t.Fatalf("rollout = weight %d version %d (reported %d), %v; want 42, 2", r.Weight, r.Version, batch[2].res.rollouts[0], err)
	}
	for name, want := range map[string]string{"a": "", "b": "", "c": slipway.ENOTFOUND} {
		if _, err := s.App(ctx, name); slipway.ErrorCode(err) != want {
			t.Errorf("app %s: %v, want code %q", name, err, want)
		}
	}
}

func TestStore_CommitWithEndedContextWritesNothing(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &slipway.Change{Apps: []slipway.AppState{testApp("web")}, Events: []slipway.Event{testEvent("web", "", "x")}}
	err := s.Commit(ctx, c)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with canceled ctx = %v, want context.Canceled", err)
	}
	if _, err := s.App(context.Background(), "web"); slipway.ErrorCode(err) != slipway.ENOTFOUND {
		t.Fatalf("app after canceled commit: %v, want ENOTFOUND", err)
	}
	if c.Events[0].Seq != 0 {
		t.Fatalf("canceled commit set seq %d", c.Events[0].Seq)
	}
}
