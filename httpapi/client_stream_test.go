package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
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

// notices counts what a Reconnect was told.
type notices struct {
	lost, back atomic.Int32
	mu         sync.Mutex
	why        []error
}

func (n *notices) reconnect(timeout time.Duration) httpapi.Reconnect {
	return httpapi.Reconnect{
		Timeout: timeout,
		Lost: func(err error) {
			n.lost.Add(1)
			n.mu.Lock()
			n.why = append(n.why, err)
			n.mu.Unlock()
		},
		Back: func() { n.back.Add(1) },
	}
}

// seqs collects the events a stream delivered.
type seqs struct {
	mu  sync.Mutex
	got []int64
}

func (s *seqs) add(e slipway.Event) {
	s.mu.Lock()
	s.got = append(s.got, e.Seq)
	s.mu.Unlock()
}

func (s *seqs) list() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.got...)
}

func TestTransient(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		status    int
		transient bool
	}{
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusNotFound, false},
		{http.StatusInternalServerError, false},
	} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "answer "+strconv.Itoa(tt.status), tt.status)
			}))
			defer srv.Close()
			_, err := apitest.NewClient(srv.URL).Apps(ctx)
			if err == nil || httpapi.Transient(err) != tt.transient {
				t.Fatalf("answer %d: error %v, Transient %v; want %v", tt.status, err, httpapi.Transient(err), tt.transient)
			}
			var e *slipway.Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, "answer "+strconv.Itoa(tt.status)) {
				t.Errorf("answer %d: error %#v, want a *slipway.Error with the answer", tt.status, err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := apitest.NewClient(url).Apps(ctx)
		if !httpapi.Transient(err) || !strings.Contains(err.Error(), "cannot reach slipway server") {
			t.Fatalf("error %v, want a transient 'cannot reach'", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := apitest.NewClient(srv.URL).Apps(cctx); err == nil || httpapi.Transient(err) {
			t.Fatalf("error %v, want a non-transient cancellation", err)
		}
	})
}

func TestClient_FollowEventsResumesAfterTheConnectionDrops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := apitest.NewServer(t, httpapi.Config{Heartbeat: time.Hour})
	hc := &http.Client{Transport: apitest.Authenticated(&http.Transport{})}
	defer hc.CloseIdleConnections()
	c := httpapi.NewClient(srv.URL, hc)
	var n notices
	c.SetReconnect(n.reconnect(time.Minute))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seqs
	var resyncs atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- c.FollowEvents(ctx, slipway.EventFilter{App: "web", After: 3}, func(e slipway.Event) error {
			got.add(e)
			return nil
		}, func() error { resyncs.Add(1); return nil })
	}()
	var want []int64
	add := func() { want = append(want, srv.Service.AddEvent("web", slipway.EventRolloutStep).Seq) }
	add()
	slipwaytest.Eventually(t, 10*time.Second, "the first event", func() bool { return len(got.list()) == 1 })

	for round := 1; round <= 2; round++ {
		srv.CloseClientConnections() // the connection breaks mid-stream
		add()
		add()
		slipwaytest.Eventually(t, 10*time.Second, fmt.Sprintf("the events after break %d", round), func() bool { return len(got.list()) >= len(want) })
		slipwaytest.Eventually(t, 10*time.Second, "the reconnect", func() bool { return n.back.Load() == int32(round) })
		if l, r := n.lost.Load(), resyncs.Load(); l != int32(round) || r != int32(round) {
			t.Errorf("after break %d: told lost %d times, resynced %d times; want %d each", round, l, r, round)
		}
	}
	add()
	slipwaytest.Eventually(t, 10*time.Second, "the last event", func() bool { return len(got.list()) >= len(want) })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("FollowEvents ended with %v, want nil when ctx ends", err)
	}
	if !reflect.DeepEqual(got.list(), want) {
		t.Errorf("delivered %v, want each of %v once, in order", got.list(), want)
	}
	hc.CloseIdleConnections()
	srv.Close()
}

// scriptedStream serves an event stream of events 1..last, answering each connection as
// its step says; it records the `after` each connection asked for.
type scriptedStream struct {
	last  int64
	steps []func(w http.ResponseWriter, r *http.Request, after int64)
	mu    sync.Mutex
	after []int64
}

func (s *scriptedStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	s.mu.Lock()
	n := len(s.after)
	s.after = append(s.after, after)
	s.mu.Unlock()
	if n < len(s.steps) {
		s.steps[n](w, r, after)
		return
	}
	serveEvents(w, r, after, s.last, 0)
}

func (s *scriptedStream) asked() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.after...)
}

// serveEvents writes events after..last as SSE frames; with cut > 0 it then writes the first
// cut bytes of the next frame and drops the connection, else it holds the stream open.
func serveEvents(w http.ResponseWriter, r *http.Request, after, last int64, cut int) {
	w.Header().Set("Content-Type", "text/event-stream")
	frame := func(seq int64) string {
		return fmt.Sprintf("id: %d\nevent: rollout.step\ndata: {\"seq\":%d,\"app\":\"web\",\"kind\":\"rollout.step\"}\n\n", seq, seq)
	}
	for seq := after + 1; seq <= last; seq++ {
		fmt.Fprint(w, frame(seq))
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if cut == 0 {
		<-r.Context().Done()
		return
	}
	fmt.Fprint(w, frame(last + 1)[:cut])
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func TestClient_FollowEventsAcrossAFrameCutShort(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := &scriptedStream{last: 4, steps: []func(http.ResponseWriter, *http.Request, int64){
		func(w http.ResponseWriter, r *http.Request, after int64) { serveEvents(w, r, after, 2, 30) },
		func(w http.ResponseWriter, r *http.Request, after int64) {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		},
		func(w http.ResponseWriter, r *http.Request, after int64) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		},
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := apitest.NewClient(srv.URL)
	var n notices
	c.SetReconnect(n.reconnect(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got seqs
	done := make(chan error, 1)
	go func() {
		done <- c.StreamEvents(ctx, slipway.EventFilter{}, func(e slipway.Event) error {
			got.add(e)
			return nil
		})
	}()
	slipwaytest.Eventually(t, 10*time.Second, "events 1 to 4", func() bool { return len(got.list()) >= 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("StreamEvents: %v", err)
	}
	if !reflect.DeepEqual(got.list(), []int64{1, 2, 3, 4}) {
		t.Errorf("delivered %v, want 1 2 3 4 once each (the cut frame of 3 not delivered)", got.list())
	}
	if a := s.asked(); !reflect.DeepEqual(a, []int64{0, 2, 2, 2}) {
		t.Errorf("connections asked for events after %v, want 0 then 2 on every reconnect", a)
	}
	if l, b := n.lost.Load(), n.back.Load(); l != 1 || b != 1 {
		t.Errorf("told lost %d and back %d times, want once each for one break (whatever the attempts)", l, b)
	}
}

func TestClient_StreamEndsAtARefusal(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("after a break", func(t *testing.T) {
		s := &scriptedStream{last: 1, steps: []func(http.ResponseWriter, *http.Request, int64){
			func(w http.ResponseWriter, r *http.Request, after int64) { serveEvents(w, r, after, 1, 10) },
			func(w http.ResponseWriter, r *http.Request, after int64) {
				http.Error(w, `{"error":{"code":"not_found","message":"app web does not exist"}}`, http.StatusNotFound)
			},
		}}
		srv := httptest.NewServer(s)
		defer srv.Close()
		c := apitest.NewClient(srv.URL)
		var n notices
		c.SetReconnect(n.reconnect(0))
		err := c.StreamEvents(context.Background(), slipway.EventFilter{App: "web"}, func(slipway.Event) error { return nil })
		if slipway.ErrorCode(err) != slipway.ENOTFOUND || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("error %v, want the 404 not_found", err)
		}
		if a := s.asked(); len(a) != 2 {
			t.Errorf("%d connections, want 2: none after the 404", len(a))
		}
		if n.lost.Load() != 1 || n.back.Load() != 0 {
			t.Errorf("told lost %d and back %d times, want 1 and 0", n.lost.Load(), n.back.Load())
		}
	})
	t.Run("at once", func(t *testing.T) {
		srv := apitest.NewServer(t, httpapi.Config{})
		srv.Service.SetError("Events", slipway.Errorf(slipway.EUNAUTHORIZED, "who are you"))
		c := apitest.NewClient(srv.URL)
		var n notices
		c.SetReconnect(n.reconnect(0))
		err := c.StreamEvents(context.Background(), slipway.EventFilter{}, func(slipway.Event) error { return nil })
		if slipway.ErrorCode(err) != slipway.EUNAUTHORIZED {
			t.Fatalf("error %v, want unauthorized", err)
		}
		if n.lost.Load() != 0 {
			t.Errorf("told lost %d times for a stream that never started", n.lost.Load())
		}
	})
}

func TestClient_StreamGivesUpAfterTheReconnectTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	unavailable := func(w http.ResponseWriter, r *http.Request, after int64) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}
	s := &scriptedStream{last: 1, steps: []func(http.ResponseWriter, *http.Request, int64){
		func(w http.ResponseWriter, r *http.Request, after int64) { serveEvents(w, r, after, 1, 5) },
	}}
	for range 1000 {
		s.steps = append(s.steps, unavailable)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := apitest.NewClient(srv.URL)
	var n notices
	c.SetReconnect(n.reconnect(400 * time.Millisecond))
	var got seqs
	err := c.StreamEvents(context.Background(), slipway.EventFilter{}, func(e slipway.Event) error { got.add(e); return nil })
	if !httpapi.Transient(err) || !strings.Contains(err.Error(), "no connection to the slipway server") || !strings.Contains(err.Error(), "400ms") {
		t.Fatalf("error %v, want a transient error naming the 400ms reconnect timeout", err)
	}
	if a := s.asked(); len(a) < 3 {
		t.Errorf("%d connections, want several attempts before giving up", len(a))
	}
	if n.lost.Load() != 1 || n.back.Load() != 0 {
		t.Errorf("told lost %d and back %d times, want 1 and 0 whatever the attempts", n.lost.Load(), n.back.Load())
	}
	if !reflect.DeepEqual(got.list(), []int64{1}) {
		t.Errorf("delivered %v, want 1", got.list())
	}
}

func TestClient_StreamWithoutReconnectEndsAtTheBreak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := &scriptedStream{last: 1, steps: []func(http.ResponseWriter, *http.Request, int64){
		func(w http.ResponseWriter, r *http.Request, after int64) { serveEvents(w, r, after, 1, 5) },
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	err := apitest.NewClient(srv.URL).StreamEvents(context.Background(), slipway.EventFilter{}, func(slipway.Event) error { return nil })
	if !httpapi.Transient(err) || !strings.Contains(err.Error(), "read event stream") {
		t.Fatalf("error %v, want the transient read error", err)
	}
	if a := s.asked(); len(a) != 1 {
		t.Errorf("%d connections, want 1", len(a))
	}
}

func TestClient_FollowEventsRedeliversAfterATransientCallbackError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := &scriptedStream{last: 3}
	srv := httptest.NewServer(s)
	defer srv.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	c := apitest.NewClient(srv.URL)
	var n notices
	c.SetReconnect(n.reconnect(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen, accepted seqs
	done := make(chan error, 1)
	go func() {
		done <- c.StreamEvents(ctx, slipway.EventFilter{}, func(e slipway.Event) error {
			seen.add(e)
			if e.Seq == 2 && len(seen.list()) == 2 {
				// The callback reads from a server that has gone meanwhile.
				_, err := apitest.NewClient(goneURL).Apps(ctx)
				return err
			}
			accepted.add(e)
			return nil
		})
	}()
	slipwaytest.Eventually(t, 10*time.Second, "events 1 to 3", func() bool { return len(accepted.list()) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("StreamEvents: %v", err)
	}
	if !reflect.DeepEqual(accepted.list(), []int64{1, 2, 3}) || !reflect.DeepEqual(seen.list(), []int64{1, 2, 2, 3}) {
		t.Errorf("seen %v, accepted %v; want event 2 delivered again after its failure, and 1 2 3 accepted once", seen.list(), accepted.list())
	}
	if a := s.asked(); !reflect.DeepEqual(a, []int64{0, 1}) {
		t.Errorf("connections asked for events after %v, want 0 then 1", a)
	}
}

// A command reads some state, then opens its stream, and the server goes away in between (a
// restart at that instant): the stream's first connection is refused, and that is a break
// like any other, not a wrong address. The stream waits for the server on the same address
// and follows it from where the command asked.
func TestClient_StreamReconnectsWhenTheServerGoesBeforeItsFirstConnection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	first := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"seq":3,"app":"web","kind":"rollout.step"}]`)
	})}
	go func() { _ = first.Serve(ln) }()
	c := apitest.NewClient("http://" + addr)
	var n notices
	c.SetReconnect(n.reconnect(0))
	evs, err := c.Events(context.Background(), slipway.EventFilter{App: "web", Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events before the stream: %v, %v", evs, err)
	}
	if err := first.Close(); err != nil { // the server goes away before the stream connects
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var got seqs
	done := make(chan error, 1)
	go func() {
		done <- c.StreamEvents(ctx, slipway.EventFilter{App: "web", After: evs[0].Seq}, func(e slipway.Event) error {
			got.add(e)
			return nil
		})
	}()
	slipwaytest.Eventually(t, 10*time.Second, "the refused first connection told as lost", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the stream ended at its refused first connection: %v", err)
		default:
		}
		return n.lost.Load() == 1
	})
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	s := &scriptedStream{last: 5}
	second := &http.Server{Handler: s}
	go func() { _ = second.Serve(ln2) }()
	slipwaytest.Eventually(t, 10*time.Second, "events 4 and 5 from the server that came back", func() bool { return len(got.list()) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("stream ended with %v after its context ended, want nil", err)
	}
	_ = second.Close()
	if want := []int64{4, 5}; !reflect.DeepEqual(got.list(), want) {
		t.Errorf("delivered %v, want %v", got.list(), want)
	}
	if a := s.asked(); len(a) == 0 || a[0] != 3 {
		t.Errorf("the server that came back was asked for events after %v, want after 3", a)
	}
	if l, b := n.lost.Load(), n.back.Load(); l != 1 || b != 1 {
		t.Errorf("told lost %d and back %d times, want once each", l, b)
	}
}
