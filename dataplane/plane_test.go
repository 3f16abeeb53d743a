package dataplane_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/proxy"
)

// backend is an HTTP server that answers with its name.
func backend(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// table routes all traffic to rev, served by the backends at addrs.
func table(rev string, addrs ...string) proxy.Table {
	t := proxy.Table{Split: slipway.Split{Weights: []slipway.Weight{{Revision: rev, Weight: 100}}}, Backends: map[string][]proxy.Backend{rev: {}}}
	for i, a := range addrs {
		t.Backends[rev] = append(t.Backends[rev], proxy.Backend{ID: fmt.Sprintf("%s-%d", rev, i), Revision: rev, Addr: a})
	}
	return t
}

func get(t *testing.T, addr string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// edge is what both a Plane and a Client are.
type edge interface {
	Set(ctx context.Context, app string, s dataplane.Spec) (dataplane.Status, error)
	State(ctx context.Context) (map[string]dataplane.Status, error)
	Drain(ctx context.Context, app, backend string) error
	Remove(ctx context.Context, app string) error
}

// eachEdge runs f against a Plane in this process and against a data plane served on a
// real unix socket, through a Client.
func eachEdge(t *testing.T, f func(t *testing.T, e edge)) {
	t.Run("plane", func(t *testing.T) {
		p := dataplane.New(dataplane.Config{DrainTimeout: 2 * time.Second})
		t.Cleanup(p.Close)
		f(t, p)
	})
	t.Run("client", func(t *testing.T) {
		f(t, serve(t, t.TempDir()))
	})
}

func TestEdge_SetServesTheTableAndReportsIt(t *testing.T) {
	eachEdge(t, func(t *testing.T, e edge) {
		ctx := t.Context()
		v1, v2 := backend(t, "v1"), backend(t, "v2")
		st, err := e.Set(ctx, "web", dataplane.Spec{Table: table("r1", v1), Listen: "127.0.0.1:0", Preview: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		if st.Listen.Bound == "" || st.Preview.Bound == "" || st.Failed() {
			t.Fatalf("status %+v: want both listeners bound", st)
		}
		if code, body := get(t, st.Listen.Bound); code != http.StatusOK || body != "v1" {
			t.Errorf("main listener: %d %q, want 200 v1", code, body)
		}
		// The same listeners, a new table: the socket stays, the traffic moves.
		st2, err := e.Set(ctx, "web", dataplane.Spec{Table: table("r2", v2), Listen: "127.0.0.1:0", Preview: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		if st2.Listen.Bound != st.Listen.Bound {
			t.Errorf("listener moved from %s to %s on a table change", st.Listen.Bound, st2.Listen.Bound)
		}
		if code, body := get(t, st.Listen.Bound); code != http.StatusOK || body != "v2" {
			t.Errorf("after the new table: %d %q, want 200 v2", code, body)
		}
		all, err := e.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := all["web"].Table.Split.Weights; len(got) != 1 || got[0].Revision != "r2" {
			t.Errorf("state reports the split %+v, want r2 100", got)
		}
		// Removed: the listener closes.
		if err := e.Remove(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", st.Listen.Bound, time.Second); err == nil {
			c.Close()
			t.Errorf("listener %s still accepts after Remove", st.Listen.Bound)
		}
		if err := e.Remove(ctx, "web"); err != nil {
			t.Errorf("removing an unknown app: %v", err)
		}
	})
}

func TestEdge_BadInputChangesNothing(t *testing.T) {
	eachEdge(t, func(t *testing.T, e edge) {
		ctx := t.Context()
		v1 := backend(t, "v1")
		st, err := e.Set(ctx, "web", dataplane.Spec{Table: table("r1", v1), Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		bad := table("r1", v1)
		bad.Split.Weights[0].Weight = 50 // weights must sum to 100
		if _, err := e.Set(ctx, "web", dataplane.Spec{Table: bad, Listen: "127.0.0.1:0"}); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("a table the proxy refuses: %v, want EINVALID", err)
		}
		for _, name := range []string{"", "../x", "a/b", "<script>", strings.Repeat("a", 200), "a\x00b"} {
			if _, err := e.Set(ctx, name, dataplane.Spec{Listen: "127.0.0.1:0"}); err == nil {
				t.Errorf("app name %q accepted", name)
			}
		}
		if code, body := get(t, st.Listen.Bound); code != http.StatusOK || body != "v1" {
			t.Errorf("after refused input: %d %q, want the old table's 200 v1", code, body)
		}
		all, _ := e.State(ctx)
		if len(all) != 1 {
			t.Errorf("state after refused input has %d apps, want 1: %v", len(all), all)
		}
	})
}

func TestEdge_ListenerThatCannotBindIsReportedAndRetried(t *testing.T) {
	eachEdge(t, func(t *testing.T, e edge) {
		ctx := t.Context()
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := taken.Addr().String()
		st, err := e.Set(ctx, "web", dataplane.Spec{Table: table("r1"), Listen: addr})
		if err != nil {
			t.Fatal(err)
		}
		if st.Listen.Error == "" || st.Listen.Bound != "" || !st.Failed() {
			t.Fatalf("status %+v: want the bind error", st)
		}
		_ = taken.Close()
		st, err = e.Set(ctx, "web", dataplane.Spec{Table: table("r1"), Listen: addr})
		if err != nil {
			t.Fatal(err)
		}
		if st.Listen.Bound != addr || st.Failed() {
			t.Errorf("status %+v after the port was freed: want bound to %s", st, addr)
		}
	})
}

func TestEdge_DrainWaitsForRequestsInFlight(t *testing.T) {
	eachEdge(t, func(t *testing.T, e edge) {
		ctx := t.Context()
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			started <- struct{}{}
			<-release
			_, _ = io.WriteString(w, "slow")
		}))
		t.Cleanup(slow.Close)
		addr := strings.TrimPrefix(slow.URL, "http://")
		st, err := e.Set(ctx, "web", dataplane.Spec{Table: table("r1", addr), Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		answered := make(chan string, 1)
		go func() { _, body := get(t, st.Listen.Bound); answered <- body }()
		<-started
		// Still in the table: draining it is refused.
		if err := e.Drain(ctx, "web", "r1-0"); slipway.ErrorCode(err) != slipway.ECONFLICT {
			t.Errorf("drain of a backend in the table: %v, want ECONFLICT", err)
		}
		if _, err := e.Set(ctx, "web", dataplane.Spec{Table: table("r1"), Listen: "127.0.0.1:0"}); err != nil {
			t.Fatal(err)
		}
		drained := make(chan error, 1)
		go func() { drained <- e.Drain(ctx, "web", "r1-0") }()
		select {
		case err := <-drained:
			t.Fatalf("drain returned (%v) with a request in flight", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		if err := <-drained; err != nil {
			t.Errorf("drain: %v", err)
		}
		if body := <-answered; body != "slow" {
			t.Errorf("the request in flight got %q", body)
		}
	})
}
