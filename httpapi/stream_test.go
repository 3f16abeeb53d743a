package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

// streamEnv serves a Server and counts the requests still being handled, so that a test can
// see a stream end on the server side.
type streamEnv struct {
	svc    *apitest.Service
	srv    *httptest.Server
	hc     *http.Client
	active atomic.Int32
}

func newStreamEnv(t testing.TB, heartbeat time.Duration) *streamEnv {
	t.Helper()
	env := &streamEnv{svc: apitest.NewService()}
	s := httpapi.NewServer(httpapi.Config{Tokens: apitest.NewTokens(),
		Deployer: env.svc, Operator: env.svc, Status: env.svc, State: env.svc,
		EventPoll: apitest.EventPoll, Heartbeat: heartbeat,
	})
	env.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.active.Add(1)
		defer env.active.Add(-1)
		s.ServeHTTP(w, r)
	}))
	env.hc = &http.Client{Transport: apitest.Authenticated(&http.Transport{})}
	t.Cleanup(func() {
		env.hc.CloseIdleConnections()
		env.srv.Close()
	})
	return env
}

// waitIdle waits until no request is being handled.
func (e *streamEnv) waitIdle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.active.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still running", e.active.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type frame struct {
	id, event, data, comment string
}

// sse reads frames of one stream.
type sse struct {
	t    testing.TB
	resp *http.Response
	rd   *bufio.Reader
}

func (e *streamEnv) open(t testing.TB, ctx context.Context, query string, hdr ...string) *sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return &sse{t: t, resp: resp, rd: bufio.NewReader(resp.Body)}
}

func (s *sse) next() frame {
	s.t.Helper()
	var f frame
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return f
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// nextEvent skips heartbeats.
func (s *sse) nextEvent() frame {
	s.t.Helper()
	for {
		if f := s.next(); f.comment == "" {
			return f
		}
	}
}

func checkFrame(t testing.TB, f frame, seq, kind string) {
	t.Helper()
	if f.id != seq || f.event != kind {
		t.Fatalf("frame id %q event %q, want %q %q", f.id, f.event, seq, kind)
	}
	var e slipway.Event
	if err := json.Unmarshal([]byte(f.data), &e); err != nil {
		t.Fatalf("data is not an event: %v: %s", err, f.data)
	}
	if want := seq; e.Kind != kind || jsonInt(e.Seq) != want {
		t.Fatalf("data %+v does not match frame %s %s", e, seq, kind)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestStream_DeliversEventsInOrderThenNewOnes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	env := newStreamEnv(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s := env.open(t, ctx, "?app=web")
	checkFrame(t, s.nextEvent(), "1", slipway.EventAppCreated)
	checkFrame(t, s.nextEvent(), "2", slipway.EventRolloutStarted)
	checkFrame(t, s.nextEvent(), "3", slipway.EventRolloutPaused)

	env.svc.AddEvent("web", slipway.EventRolloutResumed)
	env.svc.AddEvent("other", slipway.EventAppCreated)
	env.svc.AddEvent("web", slipway.EventRolloutCompleted)
	checkFrame(t, s.nextEvent(), "4", slipway.EventRolloutResumed)
	checkFrame(t, s.nextEvent(), "6", slipway.EventRolloutCompleted)

	t.Run("ends when the client goes", func(t *testing.T) {
		cancel()
		env.waitIdle(t)
	})
	env.hc.CloseIdleConnections()
	env.srv.Close()
}

func TestStream_Resumes(t *testing.T) {
	env := newStreamEnv(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("after query", func(t *testing.T) {
		s := env.open(t, ctx, "?after=1")
		checkFrame(t, s.nextEvent(), "2", slipway.EventRolloutStarted)
	})
	t.Run("Last-Event-ID wins over after", func(t *testing.T) {
		s := env.open(t, ctx, "?after=1", "Last-Event-ID", "2")
		checkFrame(t, s.nextEvent(), "3", slipway.EventRolloutPaused)
	})
	t.Run("bad Last-Event-ID", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, "GET", env.srv.URL+"/api/v1/events/stream", nil)
		req.Header.Set("Last-Event-ID", "abc")
		resp, err := env.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestStream_SendsHeartbeats(t *testing.T) {
	env := newStreamEnv(t, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := env.open(t, ctx, "?after=3")
	if f := s.next(); f.comment != "ping" || f.id != "" {
		t.Fatalf("first frame %+v, want a ping", f)
	}
	env.svc.AddEvent("web", slipway.EventRolloutStep)
	checkFrame(t, s.nextEvent(), "4", slipway.EventRolloutStep)
}

func TestStream_EndsWithServerContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	svc := apitest.NewService()
	s := httpapi.NewServer(httpapi.Config{Tokens: apitest.NewTokens(), Deployer: svc, Operator: svc, Status: svc, State: svc, EventPoll: apitest.EventPoll})
	base, stop := context.WithCancel(context.Background())
	defer stop()
	srv := httptest.NewUnstartedServer(s)
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	defer srv.Close()
	hc := &http.Client{Transport: apitest.Authenticated(&http.Transport{})}
	defer hc.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events/stream", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	st := &sse{t: t, resp: resp, rd: bufio.NewReader(resp.Body)}
	checkFrame(t, st.nextEvent(), "1", slipway.EventAppCreated)

	stop()
	// The rest of the stored events may still arrive; then the stream must end.
	rest, err := io.ReadAll(st.rd)
	if err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	if strings.Count(string(rest), "id: ") > 2 {
		t.Errorf("unexpected events after stop: %s", rest)
	}
}
