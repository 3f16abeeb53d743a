package httpapi_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/httpapi/apitest"
)

// countingState counts the reads of the event log.
type countingState struct {
	*apitest.Service
	reads atomic.Int64
}

func (c *countingState) Events(ctx context.Context, f slipway.EventFilter) ([]slipway.Event, error) {
	c.reads.Add(1)
	return c.Service.Events(ctx, f)
}

// TestStream_IdleStreamsShareOnePoll: many idle streams cost about one read of the event log
// per poll, not one each; a new event still reaches every stream; the per-client limit
// answers 429; and the poller stops with the last stream.
func TestStream_IdleStreamsShareOnePoll(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	svc := apitest.NewService()
	st := &countingState{Service: svc}
	const poll = 10 * time.Millisecond
	const streams = 20
	h := httpapi.NewServer(httpapi.Config{Tokens: apitest.NewTokens(), Deployer: svc, Operator: svc, Status: svc, State: st,
		EventPoll: poll, Heartbeat: time.Hour, MaxStreamsPerClient: streams})
	srv := httptest.NewServer(h)
	defer srv.Close()
	hc := &http.Client{Transport: apitest.Authenticated(&http.Transport{})}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	latest := svc.AddEvent("web", slipway.EventAppUpdated).Seq

	var bodies []*bufio.Reader
	var resps []*http.Response
	for range streams {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events/stream?after="+strconv.FormatInt(latest, 10), nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("stream: status %d", resp.StatusCode)
		}
		resps = append(resps, resp)
		bodies = append(bodies, bufio.NewReader(resp.Body))
	}
	// One more from the same client is over the limit.
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events/stream", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("stream %d from one client: status %d, want 429", streams+1, resp.StatusCode)
	}

	before := st.reads.Load()
	const polls = 30
	time.Sleep(polls * poll) // idle on purpose: the reads counted are what idleness costs
	idle := st.reads.Load() - before
	if idle > 2*polls {
		t.Errorf("%d idle streams read the event log %d times in %d polls; want about one read per poll", streams, idle, polls)
	}

	svc.AddEvent("web", slipway.EventRolloutStarted)
	for i, br := range bodies {
		got := ""
		for !strings.HasPrefix(got, "event: ") {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			got = line
		}
		if !strings.Contains(got, slipway.EventRolloutStarted) {
			t.Errorf("stream %d got %q", i, got)
		}
	}
	for _, r := range resps {
		r.Body.Close()
	}
	cancel()
}
