// Package progress is slipway's one way of carrying something on step by step: one worker per
// key — an app's rollout, a flag's ramp, a release through a pipeline — that is the only
// goroutine moving that key on. Anyone else writes the key's state in the store (with an
// optimistic version) and wakes its worker; the worker then takes every step the key can
// take now (Task.Pass), and sleeps until it is woken again, until the time the key waits
// for, or, while it waits on the outside world, until the next poll.
//
// A Group holds the workers of one kind. A worker's goroutine lives while its key
// progresses: a pass that reports the key inactive ends it (Task.Idle), unless the worker
// was woken meanwhile. The task itself may stay in the group with its caches (Config.Keep),
// so that the next wake of an idle key need not read the store.
//
// The state a task keeps about what others told it (a change to read again, a state handed
// over by a writer) is guarded by the group's lock: Wake, With and Do run their function
// under it, in the same critical section as the nudge, so no wake is lost against a worker
// that is retiring.
package progress

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Next is what one pass leaves for the next.
type Next struct {
	// Active says the key still progresses: the worker keeps its goroutine.
	Active bool
	// WakeAt is when the key wants its next pass (zero: only when woken or polled).
	WakeAt time.Time
	// Poll says the key waits on the outside world (a platform, a measurement): its next
	// pass comes after Config.Poll at the latest.
	Poll bool
}

// Task is the work of one key.
type Task interface {
	// Pass takes every step the key can take now and says when it wants the next. An error
	// is logged and retried after Config.Poll.
	Pass(ctx context.Context) (Next, error)
	// Idle is called when the worker's goroutine ends (the key is inactive, or the group's
	// context ended): the task stops what it started for the key (analysis executions).
	Idle()
}

// Config is what a Group needs.
type Config[T Task] struct {
	// New returns the task of key, at its first wake.
	New func(key string) T
	// Keep, when set, says whether an idle task stays in the group (with its caches);
	// without it idle tasks are dropped.
	Keep func(T) bool
	// Poll is how long a key that waits on the outside world, or whose pass failed, sleeps
	// at most.
	Poll time.Duration
	// Now is the clock WakeAt is read with (time.Now when nil).
	Now func() time.Time
	// Log receives failed passes, with LogKey naming the key ("app", "flag").
	Log    *slog.Logger
	LogKey string
}

// Group is the workers of one kind of key.
type Group[T Task] struct {
	cfg Config[T]

	mu      sync.Mutex
	ctx     context.Context // Start's; nil before
	workers map[string]*worker[T]
	wg      sync.WaitGroup
}

type worker[T Task] struct {
	key  string
	task T
	wake chan struct{}
	// running (guarded by Group.mu) says the worker's goroutine is alive.
	running bool
}

// NewGroup returns a Group; wakes do nothing until Start.
func NewGroup[T Task](cfg Config[T]) *Group[T] {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.LogKey == "" {
		cfg.LogKey = "key"
	}
	return &Group[T]{cfg: cfg, workers: map[string]*worker[T]{}}
}

// Start lets wakes start workers, which run until ctx ends; Wait waits for them then.
func (g *Group[T]) Start(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ctx = ctx
}

// Wait returns once every worker's goroutine has ended (after Start's context ended).
func (g *Group[T]) Wait() { g.wg.Wait() }

// Wake asks key's worker for a pass now, starting one (and its task) if none runs. fn, when
// set, runs first on the task under the group's lock. Before Start, or once its context
// ended, Wake does nothing and reports false.
func (g *Group[T]) Wake(key string, fn func(T)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx == nil || g.ctx.Err() != nil {
		return false
	}
	w, ok := g.workers[key]
	if !ok {
		w = &worker[T]{key: key, task: g.cfg.New(key), wake: make(chan struct{}, 1)}
		g.workers[key] = w
	}
	if !w.running {
		w.running = true
		g.wg.Add(1)
		ctx := g.ctx
		go func() {
			defer g.wg.Done()
			g.run(ctx, w)
		}()
	}
	if fn != nil {
		fn(w.task)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// With runs fn on key's task under the group's lock, if the group holds one.
func (g *Group[T]) With(key string, fn func(T)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.workers[key]
	if ok {
		fn(w.task)
	}
	return ok
}

// Do runs fn under the group's lock (for a task's own reads of what With and Wake guard).
func (g *Group[T]) Do(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn()
}

// Keys returns the keys of every task the group holds, running or kept idle.
func (g *Group[T]) Keys() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys := make([]string, 0, len(g.workers))
	for k := range g.workers {
		keys = append(keys, k)
	}
	return keys
}

// retire ends w's goroutine unless it was woken meanwhile; it reports whether w may exit.
func (g *Group[T]) retire(w *worker[T]) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-w.wake:
		return false
	default:
	}
	w.running = false
	if g.cfg.Keep == nil || !g.cfg.Keep(w.task) {
		delete(g.workers, w.key)
	}
	return true
}

// run is a worker's goroutine: a pass, then sleep until woken, the time the key waits for,
// or the next poll; it ends when the key is inactive and nothing woke it meanwhile.
func (g *Group[T]) run(ctx context.Context, w *worker[T]) {
	var t *time.Timer // reused from one sleep to the next
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		nx, err := w.task.Pass(ctx)
		if ctx.Err() != nil {
			w.task.Idle()
			return
		}
		if err != nil {
			g.cfg.Log.Warn("pass failed", g.cfg.LogKey, w.key, "err", err)
			nx.Active, nx.Poll = true, true // retry soon
		}
		if !nx.Active {
			// The task stops what it started before the goroutine goes: the next one
			// started for this key owns it.
			w.task.Idle()
			if g.retire(w) {
				return
			}
			continue
		}
		delay := time.Duration(-1)
		if nx.Poll {
			delay = g.cfg.Poll
		}
		if !nx.WakeAt.IsZero() {
			d := max(0, nx.WakeAt.Sub(g.cfg.Now()))
			if delay < 0 || d < delay {
				delay = d
			}
		}
		var timer <-chan time.Time
		if delay >= 0 {
			if t == nil {
				t = time.NewTimer(delay)
			} else {
				t.Reset(delay)
			}
			timer = t.C
		}
		select {
		case <-ctx.Done():
			w.task.Idle()
			return
		case <-w.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}
