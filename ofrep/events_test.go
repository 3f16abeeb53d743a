package ofrep_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/ofrep"
	"slipway.dev/slipway/slipwaytest"
)

// stream is an open event stream read line by line.
type stream struct {
	lines  chan string
	cancel context.CancelFunc
}

// openStream opens GET path on base and reads it in the background.
func openStream(t *testing.T, base, path string, header ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{lines: make(chan string, 64), cancel: cancel}
	go func() {
		defer close(s.lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next line that has prefix, failing after a deadline.
func (s *stream) next(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("stream ended before a line starting %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line starting %q within 5s", prefix)
		}
	}
}

// ended waits for the stream to end.
func (s *stream) ended(t *testing.T) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.lines:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream did not end within 5s")
		}
	}
}

type refetch struct {
	Type         string `json:"type"`
	ETag         string `json:"etag"`
	LastModified int64  `json:"lastModified"`
}

func parseData(t *testing.T, line string) refetch {
	t.Helper()
	var r refetch
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	return r
}

// tracked counts handler calls in flight, so tests can see streams end on the server side.
type tracked struct {
	h      http.Handler
	active chan int
}

func (tr *tracked) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tr.active <- <-tr.active + 1
	defer func() { tr.active <- <-tr.active - 1 }()
	tr.h.ServeHTTP(w, r)
}

func (tr *tracked) waitIdle(t *testing.T) {
	t.Helper()
	slipwaytest.Eventually(t, 5*time.Second, "the handlers to finish", func() bool {
		n := <-tr.active
		tr.active <- n
		return n == 0
	})
}

func TestEvents(t *testing.T) {
	clk := &clock{t: time.Unix(1_771_622_898, 0)}
	srv, cur := newServer(t, ofrep.Config{Now: clk.now, Heartbeat: 20 * time.Millisecond})
	tr := &tracked{h: srv, active: make(chan int, 1)}
	tr.active <- 0
	hs := httptest.NewServer(tr)
	t.Cleanup(hs.Close)

	s := openStream(t, hs.URL, ofrep.EventsPath)
	s.next(t, ": connected")
	s.next(t, ": heartbeat")

	t.Run("Notify after a swap sends refetchEvaluation", func(t *testing.T) {
		clk.t = clk.t.Add(time.Minute)
		cur.Swap(compile(t, "testdata/flags.json", 2))
		srv.Notify()
		id := s.next(t, "id: ")
		if ev := s.next(t, "event: "); ev != "event: message" {
			t.Errorf("event line %q", ev)
		}
		got := parseData(t, s.next(t, "data: "))
		if got.Type != "refetchEvaluation" || got.LastModified != clk.t.Unix() || len(got.ETag) < 3 || got.ETag[0] != '"' {
			t.Errorf("data %+v", got)
		}
		if strings.TrimPrefix(id, "id: ") != strings.Trim(got.ETag, `"`) {
			t.Errorf("id %q, etag %q", id, got.ETag)
		}
	})
	t.Run("a swap without Notify is noticed at the next heartbeat", func(t *testing.T) {
		cur.Swap(compile(t, "testdata/flags.json", 3))
		if got := parseData(t, s.next(t, "data: ")); got.Type != "refetchEvaluation" {
			t.Errorf("data %+v", got)
		}
	})
	t.Run("a reconnect with an old Last-Event-ID is told to refetch at once", func(t *testing.T) {
		s2 := openStream(t, hs.URL, ofrep.EventsPath, "Last-Event-ID", "stale")
		if got := parseData(t, s2.next(t, "data: ")); got.Type != "refetchEvaluation" {
			t.Errorf("data %+v", got)
		}
		s2.cancel()
	})
	t.Run("POST is not allowed", func(t *testing.T) {
		if r := do(t, srv, "POST", ofrep.EventsPath, "{}"); r.status != 405 || r.header.Get("Allow") != "GET, OPTIONS" {
			t.Errorf("%d %v", r.status, r.header)
		}
	})
	t.Run("client disconnect ends the handler", func(t *testing.T) {
		s.cancel()
		s.ended(t)
		tr.waitIdle(t)
	})
	t.Run("CloseStreams ends open streams", func(t *testing.T) {
		s3 := openStream(t, hs.URL, ofrep.EventsPath)
		s3.next(t, ": connected")
		srv.CloseStreams()
		s3.ended(t)
		tr.waitIdle(t)
	})
}

func TestEventsEndWithServerShutdown(t *testing.T) {
	srv, _ := newServer(t, ofrep.Config{})
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.RegisterOnShutdown(srv.CloseStreams)
	hs.Start()
	s := openStream(t, hs.URL, ofrep.EventsPath)
	s.next(t, ": connected")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := hs.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v (the stream kept the server busy)", err)
	}
	s.ended(t)
	hs.Close()
}
