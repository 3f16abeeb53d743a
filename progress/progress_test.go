package progress_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/progress"
	"slipway.dev/slipway/slipwaytest"
)

// task is a scripted key: each pass pops the next answer (the last one repeats).
type task struct {
	mu      sync.Mutex
	answers []answer
	passes  atomic.Int64
	idles   atomic.Int64
	keep    bool
	// running counts passes in progress, to show one worker per key.
	running, most atomic.Int64
}

type answer struct {
	next progress.Next
	err  error
}

func (t *task) Pass(ctx context.Context) (progress.Next, error) {
	if n := t.running.Add(1); n > t.most.Load() {
		t.most.Store(n)
	}
	defer t.running.Add(-1)
	time.Sleep(time.Millisecond) // a pass takes time: overlapping passes would show
	t.passes.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.answers[0]
	if len(t.answers) > 1 {
		t.answers = t.answers[1:]
	}
	return a.next, a.err
}

func (t *task) Idle() { t.idles.Add(1) }

func group(t *testing.T, tasks map[string]*task, poll time.Duration) (*progress.Group[*task], context.CancelFunc) {
	t.Helper()
	g := progress.NewGroup(progress.Config[*task]{
		New:  func(key string) *task { return tasks[key] },
		Keep: func(tk *task) bool { return tk.keep },
		Poll: poll,
	})
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	t.Cleanup(func() { cancel(); g.Wait() })
	return g, cancel
}

// TestGroup_OneWorkerPerKeyUntilInactive: wakes start one worker per key, which runs
// passes while the key is active (at its WakeAt, or polled), then goes idle; a kept task
// stays in the group, a dropped one does not; the next wake starts it again.
func TestGroup_OneWorkerPerKeyUntilInactive(t *testing.T) {
	now := time.Now()
	a := &task{answers: []answer{
		{next: progress.Next{Active: true, WakeAt: now.Add(-time.Second)}}, // due at once
		{next: progress.Next{Active: true, Poll: true}},                    // after the poll
		{next: progress.Next{}},                                            // done
	}, keep: true}
	b := &task{answers: []answer{{next: progress.Next{}}}}
	g, _ := group(t, map[string]*task{"a": a, "b": b}, 5*time.Millisecond)
	for range 20 {
		g.Wake("a", nil)
		g.Wake("b", nil)
	}
	slipwaytest.Eventually(t, 5*time.Second, "a ran its three passes and went idle", func() bool {
		return a.passes.Load() >= 3 && a.idles.Load() >= 1 && a.running.Load() == 0
	})
	slipwaytest.Eventually(t, 5*time.Second, "b went idle", func() bool { return b.idles.Load() >= 1 })
	if a.most.Load() != 1 || b.most.Load() != 1 {
		t.Fatalf("passes of one key overlapped: %d, %d", a.most.Load(), b.most.Load())
	}
	slipwaytest.Eventually(t, 5*time.Second, "b dropped, a kept", func() bool {
		keys := g.Keys()
		sort.Strings(keys)
		return len(keys) == 1 && keys[0] == "a"
	})
	before := a.passes.Load()
	if !g.Wake("a", func(tk *task) {
		if tk != a {
			t.Error("Wake handed another task")
		}
	}) {
		t.Fatal("Wake after Start reported false")
	}
	slipwaytest.Eventually(t, 5*time.Second, "a ran again after its wake", func() bool { return a.passes.Load() > before })
}

// TestGroup_FailedPassRetriesAfterPoll: an error keeps the worker and retries after Poll.
func TestGroup_FailedPassRetriesAfterPoll(t *testing.T) {
	a := &task{answers: []answer{{err: errors.New("store down")}, {err: errors.New("store down")}, {next: progress.Next{}}}}
	g, _ := group(t, map[string]*task{"a": a}, 5*time.Millisecond)
	g.Wake("a", nil)
	slipwaytest.Eventually(t, 5*time.Second, "three passes, then idle", func() bool {
		return a.passes.Load() >= 3 && a.idles.Load() >= 1 && a.running.Load() == 0
	})
}

// TestGroup_StopEndsEveryWorker: a worker waiting for a far WakeAt ends (Idle) when the
// group's context ends, Wait returns, and a later wake starts nothing.
func TestGroup_StopEndsEveryWorker(t *testing.T) {
	a := &task{answers: []answer{{next: progress.Next{Active: true, WakeAt: time.Now().Add(time.Hour)}}}}
	g, cancel := group(t, map[string]*task{"a": a}, time.Hour)
	g.Wake("a", nil)
	slipwaytest.Eventually(t, 5*time.Second, "a's first pass", func() bool { return a.passes.Load() >= 1 })
	cancel()
	done := make(chan struct{})
	go func() { g.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the context ended")
	}
	if a.idles.Load() != 1 {
		t.Fatalf("Idle called %d times, want 1", a.idles.Load())
	}
	if g.Wake("a", nil) {
		t.Fatal("Wake after the context ended reported true")
	}
}

// TestGroup_WakeBeforeStartDoesNothing: before Start, no worker runs.
func TestGroup_WakeBeforeStartDoesNothing(t *testing.T) {
	a := &task{answers: []answer{{}}}
	g := progress.NewGroup(progress.Config[*task]{New: func(string) *task { return a }})
	if g.Wake("a", nil) || len(g.Keys()) != 0 {
		t.Fatal("a wake before Start started a worker")
	}
}

// TestGroup_NoWakeLostAgainstRetirement: a key woken over and over while its worker goes
// idle always gets a pass after its last wake.
func TestGroup_NoWakeLostAgainstRetirement(t *testing.T) {
	a := &task{answers: []answer{{next: progress.Next{}}}}
	g, _ := group(t, map[string]*task{"a": a}, time.Hour)
	for i := range 200 {
		var at int64
		g.Wake("a", func(*task) { at = a.passes.Load() })
		slipwaytest.Eventually(t, 5*time.Second, "a pass after wake", func() bool { return a.passes.Load() > at })
		if i%2 == 0 {
			// A varied delay on purpose: the next wake lands at different points of the
			// worker's retirement, where a lost wake would show.
			time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
		}
	}
}
