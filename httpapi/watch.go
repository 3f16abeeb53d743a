package httpapi

import (
	"context"
	"net"
	"sync"
	"time"

	"slipway.dev/slipway"
)

// Defaults of the stream limits (Config.MaxStreams, Config.MaxStreamsPerClient).
const (
	DefaultMaxStreams          = 1000
	DefaultMaxStreamsPerClient = 32
)

// watcher is the one poller of the event log for every open event stream: it reads whether
// new events arrived once per EventPoll, however many streams are open, and wakes the streams
// only then; an idle stream costs no read of the store. Its goroutine runs while at least one
// stream is open and ends with the last one.
//
// It also counts the open streams, in all and per client address, for the limits.
type watcher struct {
	state slipway.StateReader
	poll  time.Duration

	mu       sync.Mutex
	seq      int64         // the newest event seen
	changed  chan struct{} // closed, and replaced, when seq moves
	open     int
	perPeer  map[string]int
	stopPoll context.CancelFunc
	done     chan struct{}
}

func newWatcher(state slipway.StateReader, poll time.Duration) *watcher {
	return &watcher{state: state, poll: poll, changed: make(chan struct{}), perPeer: map[string]int{}}
}

// join registers a stream of peer; it returns EUNAVAILABLE or a too-many error over a limit.
// The caller calls leave when the stream ends.
func (w *watcher) join(peer string, maxAll, maxPeer int) error {
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open >= maxAll {
		return slipway.Errorf(slipway.EUNAVAILABLE, "the server has %d event streams open, its limit; try again later", w.open)
	}
	if w.perPeer[host] >= maxPeer {
		return &tooMany{slipway.Errorf(slipway.EINVALID, "%d event streams are open from %s, the limit per client; close one first", w.perPeer[host], host)}
	}
	w.open++
	w.perPeer[host]++
	if w.open == 1 {
		ctx, cancel := context.WithCancel(context.Background())
		w.stopPoll, w.done = cancel, make(chan struct{})
		go w.run(ctx, w.done)
	}
	return nil
}

// leave unregisters a stream of peer; the last one stops the poller and waits for it.
func (w *watcher) leave(peer string) {
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	w.mu.Lock()
	w.open--
	if w.perPeer[host]--; w.perPeer[host] <= 0 {
		delete(w.perPeer, host)
	}
	var stop context.CancelFunc
	var done chan struct{}
	if w.open == 0 {
		stop, done = w.stopPoll, w.done
		w.stopPoll, w.done = nil, nil
	}
	w.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// current returns the newest event seen so far.
func (w *watcher) current() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// wait returns a channel closed when the watcher has seen events newer than seen (at once
// when it already has).
func (w *watcher) wait(seen int64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seq > seen {
		c := make(chan struct{})
		close(c)
		return c
	}
	return w.changed
}

// run polls the event log until ctx ends.
func (w *watcher) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		w.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check reads the newest events after the last seen and wakes the streams when there are.
// A read that fails wakes them too: each stream then reads and reports for itself.
func (w *watcher) check(ctx context.Context) {
	w.mu.Lock()
	after := w.seq
	w.mu.Unlock()
	newest := after
	for {
		evs, err := w.state.Events(ctx, slipway.EventFilter{After: newest, Limit: streamBatch})
		if err != nil {
			if ctx.Err() == nil {
				w.broadcast(newest)
			}
			return
		}
		if len(evs) > 0 {
			newest = evs[len(evs)-1].Seq
		}
		if len(evs) < streamBatch {
			break
		}
	}
	if newest > after {
		w.broadcast(newest)
	}
}

func (w *watcher) broadcast(seq int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq > w.seq {
		w.seq = seq
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// tooMany marks a per-client stream limit: 429.
type tooMany struct{ err *slipway.Error }

func (t *tooMany) Error() string { return t.err.Error() }
func (t *tooMany) Unwrap() error { return t.err }
