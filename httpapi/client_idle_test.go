package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"

	"slipway.dev/slipway/slipwaytest"
)

// silencer stands between a real API server and its clients. The first stream it serves
// (a request whose path holds `stream`) goes through until the server has sent one event
// (a frame with an id); from then on everything the server writes on it is swallowed, as
// by a network that lost the connection without closing it: the server believes it sends
// events and heartbeats, the client receives nothing. Later streams go through untouched.
type silencer struct {
	h       http.Handler
	stream  string
	streams atomic.Int32
	pings   atomic.Int32 // heartbeats that reached the client, on every stream
	// released is closed when the server's handler of the silenced stream returns: its
	// client has closed the connection.
	released chan struct{}
}

func newSilencer(h http.Handler, stream string) *silencer {
	return &silencer{h: h, stream: stream, released: make(chan struct{})}
}

func (s *silencer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, s.stream) {
		s.h.ServeHTTP(w, r)
		return
	}
	n := s.streams.Add(1)
	sw := &silencedWriter{ResponseWriter: w, s: s, silence: n == 1}
	s.h.ServeHTTP(sw, r)
	if n == 1 {
		close(s.released)
	}
}

// silencedWriter is one stream's writer under a silencer.
type silencedWriter struct {
	http.ResponseWriter
	s       *silencer
	silence bool // swallow everything after the first event
	mu      sync.Mutex
	swallow bool
}

func (w *silencedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.swallow {
		return len(p), nil
	}
	if bytes.HasPrefix(p, []byte(": ping")) {
		w.s.pings.Add(1)
	}
	if w.silence && bytes.HasPrefix(p, []byte("id: ")) {
		w.swallow = true
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController flush the real writer.
func (w *silencedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// lastSeq is the seq of the last event the service holds.
func lastSeq(t *testing.T, svc *apitest.Service) int64 {
	t.Helper()
	evs, err := svc.Events(context.Background(), slipway.EventFilter{})
	if err != nil || len(evs) == 0 {
		t.Fatalf("seeded events: %v, %v", evs, err)
	}
	return evs[len(evs)-1].Seq
}

func (n *notices) reasons() []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]error(nil), n.why...)
}

// idleClient returns a client of url that reconnects (for a minute at most) and takes a
// connection silent for idle as broken, and the notices of its breaks.
func idleClient(url string, idle time.Duration) (*httpapi.Client, *notices) {
	c := apitest.NewClient(url)
	n := &notices{}
	r := n.reconnect(time.Minute)
	r.Idle = idle
	c.SetReconnect(r)
	return c, n
}

// eventSilencer serves svc's API, with a heartbeat every 50 ms, behind a silencer of its
// event stream.
func eventSilencer(svc *apitest.Service) *silencer {
	return newSilencer(httpapi.NewServer(httpapi.Config{Tokens: apitest.NewTokens(),
		Deployer: svc, Operator: svc, Status: svc, State: svc,
		EventPoll: apitest.EventPoll, Heartbeat: 50 * time.Millisecond,
	}), "/events/stream")
}

// wantSilence checks that the one break a stream was told of was its silence.
func wantSilence(t *testing.T, n *notices, idle time.Duration) {
	t.Helper()
	why := n.reasons()
	if len(why) != 1 || !httpapi.Transient(why[0]) || !strings.Contains(why[0].Error(), "nothing received from the server for "+idle.String()) {
		t.Errorf("told lost for %v; want once, for a transient silence of %s", why, idle)
	}
}

func TestClient_FollowEventsReconnectsASilentConnection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const idle = 500 * time.Millisecond
	svc := apitest.NewService()
	sil := eventSilencer(svc)
	srv := httptest.NewServer(sil)
	defer srv.Close()
	c, n := idleClient(srv.URL, idle)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seqs
	var resyncs atomic.Int32
	after := lastSeq(t, svc)
	done := make(chan error, 1)
	go func() {
		done <- c.FollowEvents(ctx, slipway.EventFilter{App: "web", After: after}, func(e slipway.Event) error {
			got.add(e)
			return nil
		}, func() error { resyncs.Add(1); return nil })
	}()
	var want []int64
	add := func() { want = append(want, svc.AddEvent("web", slipway.EventRolloutStep).Seq) }
	add()
	slipwaytest.Eventually(t, 10*time.Second, "the first event", func() bool { return len(got.list()) == 1 })
	// The connection has gone silent: these events and the heartbeats never arrive on it.
	add()
	add()
	select {
	case <-sil.released:
	case <-time.After(10 * time.Second):
		t.Fatal("the client never closed the silent connection")
	}
	slipwaytest.Eventually(t, 10*time.Second, "the events the silence hid", func() bool { return len(got.list()) >= len(want) })
	slipwaytest.Eventually(t, 10*time.Second, "the reconnect", func() bool { return n.back.Load() == 1 })
	add()
	slipwaytest.Eventually(t, 10*time.Second, "an event after the reconnect", func() bool { return len(got.list()) >= len(want) })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("FollowEvents ended with %v, want nil when ctx ends", err)
	}
	if !reflect.DeepEqual(got.list(), want) {
		t.Errorf("delivered %v, want each of %v once, in order", got.list(), want)
	}
	wantSilence(t, n, idle)
	if s, r := sil.streams.Load(), resyncs.Load(); s != 2 || r != 1 {
		t.Errorf("%d connections and %d resyncs, want 2 and 1: one reconnect, none on the live connection", s, r)
	}
}

func TestClient_StreamKeptUpByHeartbeats(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// Heartbeats come every 50ms; an idle limit 40 times that keeps a loaded machine (a
	// goroutine not scheduled for a few hundred milliseconds) from passing for a silence.
	const idle = 2 * time.Second
	svc := apitest.NewService()
	// The silencer counts the heartbeats; only a second stream would go through untouched.
	sil := eventSilencer(svc)
	srv := httptest.NewServer(sil)
	defer srv.Close()
	c, n := idleClient(srv.URL, idle)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seqs
	after := lastSeq(t, svc)
	done := make(chan error, 1)
	go func() {
		// Every event delivered so far: the first frame (which would start the silence on
		// this connection) never comes while the stream stays idle.
		done <- c.StreamEvents(ctx, slipway.EventFilter{App: "web", After: after}, func(e slipway.Event) error {
			got.add(e)
			return nil
		})
	}()
	// Two idle periods' worth of heartbeats, and nothing else.
	slipwaytest.Eventually(t, 20*time.Second, "heartbeats over two idle periods", func() bool { return sil.pings.Load() >= int32(2*idle/(50*time.Millisecond)) })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("StreamEvents ended with %v, want nil when ctx ends", err)
	}
	if l, s := n.lost.Load(), sil.streams.Load(); l != 0 || s != 1 {
		t.Errorf("told lost %d times over %d connections (%v); want one connection kept up by its heartbeats", l, s, n.reasons())
	}
	if len(got.list()) != 0 {
		t.Errorf("delivered %v, want nothing", got.list())
	}
}

func TestClient_StreamReconnectsAServerThatDoesNotAnswer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const idle = 300 * time.Millisecond
	pinging := func(w http.ResponseWriter, r *http.Request, after int64) {
		w.Header().Set("Content-Type", "text/event-stream")
		for seq := after + 1; seq <= 4; seq++ {
			fmt.Fprintf(w, "id: %d\ndata: {\"seq\":%d,\"app\":\"web\"}\n\n", seq, seq)
		}
		rc := http.NewResponseController(w)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}
	s := &scriptedStream{last: 4, steps: []func(http.ResponseWriter, *http.Request, int64){
		// Two events, then silence on an open connection.
		func(w http.ResponseWriter, r *http.Request, after int64) { serveEvents(w, r, after, 2, 0) },
		// No answer at all.
		func(w http.ResponseWriter, r *http.Request, after int64) { <-r.Context().Done() },
		pinging,
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, n := idleClient(srv.URL, idle)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seqs
	done := make(chan error, 1)
	go func() {
		done <- c.StreamEvents(ctx, slipway.EventFilter{}, func(e slipway.Event) error { got.add(e); return nil })
	}()
	slipwaytest.Eventually(t, 10*time.Second, "events 1 to 4", func() bool { return len(got.list()) >= 4 })
	slipwaytest.Eventually(t, 10*time.Second, "the reconnect", func() bool { return n.back.Load() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("StreamEvents: %v", err)
	}
	if !reflect.DeepEqual(got.list(), []int64{1, 2, 3, 4}) {
		t.Errorf("delivered %v, want 1 2 3 4 once each", got.list())
	}
	if a := s.asked(); !reflect.DeepEqual(a, []int64{0, 2, 2}) {
		t.Errorf("connections asked for events after %v, want 0, then 2 twice (the silent answer given up)", a)
	}
	wantSilence(t, n, idle)
}

func TestLogs_FollowReconnectsASilentConnection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// The server looks for new lines every LogPoll and sends a heartbeat at the first look
	// after Heartbeat: one every LogPoll here, four within the idle timeout.
	idle := 4 * httpapi.LogPoll
	dir := t.TempDir()
	a := filepath.Join(dir, "abc-0.log")
	appendFile(t, a, "a1\n")
	svc := apitest.NewService()
	sil := newSilencer(httpapi.NewServer(httpapi.Config{Tokens: apitest.NewTokens(),
		Deployer: svc, Operator: svc, Status: svc, State: svc,
		Logs: dirLogs{dir}, Heartbeat: time.Millisecond,
	}), "/logs")
	srv := httptest.NewServer(sil)
	defer srv.Close()
	c, n := idleClient(srv.URL, idle)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &apitest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, "web", "", 10, true, out) }()

	want := "abc-0 | a1\n"
	slipwaytest.Eventually(t, 10*time.Second, "the tail", func() bool { return out.String() == want })
	// The connection has gone silent: this line never arrives on it.
	appendFile(t, a, "a2\n")
	select {
	case <-sil.released:
	case <-time.After(10 * time.Second):
		t.Fatal("the client never closed the silent connection")
	}
	want += "abc-0 | a2\n"
	slipwaytest.Eventually(t, 10*time.Second, "the line the silence hid", func() bool { return out.String() == want })
	slipwaytest.Eventually(t, 10*time.Second, "the reconnect", func() bool { return n.back.Load() == 1 })
	appendFile(t, a, "a3\n")
	want += "abc-0 | a3\n"
	slipwaytest.Eventually(t, 10*time.Second, "a line after the reconnect", func() bool { return out.String() == want })
	// The second connection is kept up by its heartbeats, over more than two idle periods.
	from := sil.pings.Load()
	slipwaytest.Eventually(t, 10*time.Second, "heartbeats on the second connection", func() bool { return sil.pings.Load() >= from+10 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Logs ended with %v, want nil when ctx ends", err)
	}
	if out.String() != want {
		t.Errorf("followed logs:\n%s\nwant every line once, in order:\n%s", out.String(), want)
	}
	wantSilence(t, n, idle)
	if s := sil.streams.Load(); s != 2 {
		t.Errorf("%d connections, want 2: one reconnect, none on the live connection", s)
	}
}

func TestLogs_PlainTextFollowIsNotTakenAsSilent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const idle = 100 * time.Millisecond
	// A server that streams logs only as text sends no heartbeats: a quiet log is no sign
	// of a dead connection.
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rc := http.NewResponseController(w)
		fmt.Fprint(w, "abc-0 | a1\n")
		_ = rc.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(5 * idle):
		}
		fmt.Fprint(w, "abc-0 | a2\n")
	}))
	defer srv.Close()
	c, n := idleClient(srv.URL, idle)
	out := &apitest.Buffer{}
	if err := c.Logs(context.Background(), "web", "", 10, true, out); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if want := "abc-0 | a1\nabc-0 | a2\n"; out.String() != want {
		t.Errorf("followed logs %q, want %q", out.String(), want)
	}
	if l, k := n.lost.Load(), conns.Load(); l != 0 || k != 1 {
		t.Errorf("told lost %d times over %d connections (%v), want one connection never lost", l, k, n.reasons())
	}
}
