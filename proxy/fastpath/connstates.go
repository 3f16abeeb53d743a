package fastpath

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// FreshGrace is how long after its accept a connection that has sent nothing yet may still
// send its request once a server began to stop: an HTTP/1 client sends its request at once,
// and on a socket shared with another server (a restart in place) the request would
// otherwise be lost. A connection quiet for longer is idle (or HTTP/2, which net/http's
// Shutdown ends gracefully).
const FreshGrace = 500 * time.Millisecond

// quietPoll is how often Quiet checks the connections.
const quietPoll = 5 * time.Millisecond

// ConnStates follows an http.Server's connections (Track is its ConnState hook), so that a
// stop can wait until none is Busy before calling Shutdown: Shutdown alone drops a request
// it reads after it began, on a connection accepted just before. The zero value is ready.
type ConnStates struct {
	mu sync.Mutex
	m  map[net.Conn]connState
}

// connState is a connection's last http.ConnState and when it entered it.
type connState struct {
	state http.ConnState
	since time.Time
}

// Track records that nc entered state st.
func (t *ConnStates) Track(nc net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st == http.StateClosed || st == http.StateHijacked {
		delete(t.m, nc)
		return
	}
	if t.m == nil {
		t.m = map[net.Conn]connState{}
	}
	t.m[nc] = connState{state: st, since: time.Now()}
}

// Busy reports whether a connection serves a request, or is new (accepted or handed over)
// less than FreshGrace ago and has not started one yet.
func (t *ConnStates) Busy() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, cs := range t.m {
		switch cs.state {
		case http.StateActive:
			return true
		case http.StateNew:
			if now.Sub(cs.since) < FreshGrace {
				return true
			}
		}
	}
	return false
}

// Quiet waits until no connection is Busy. It returns ctx's error if ctx ends first.
func (t *ConnStates) Quiet(ctx context.Context) error {
	if !t.Busy() {
		return nil
	}
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	for t.Busy() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
