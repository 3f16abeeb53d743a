package demo

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// runLoad runs l until cond holds for its counts (or a deadline passes) and returns the
// counts after Run has returned.
func runLoad(tb testing.TB, l *Load, cond func(map[string]Count) bool) map[string]Count {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(l.Counts()) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			tb.Fatalf("counts never got there: %+v", l.Counts())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return l.Counts()
}

func TestLoad_CountsByVersion(t *testing.T) {
	good := &Service{Version: "v1"}
	bad := &Service{Version: "v2", ErrorRate: 1}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			bad.ServeHTTP(w, r)
		case 1:
			w.WriteHeader(http.StatusBadGateway) // no version: the proxy's own failure
		default:
			good.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	start := time.Now()
	l := &Load{URL: srv.URL + "/", Rate: 400, Workers: 4}
	counts := runLoad(t, l, func(c map[string]Count) bool { return c["v2"].Requests >= 10 })

	v1, v2, none := counts["v1"], counts["v2"], counts[""]
	if v1.Requests == 0 || v1.Failed != 0 || !v1.FirstFailure.IsZero() {
		t.Errorf("v1 = %+v, want requests and no failure", v1)
	}
	if v2.Requests < 10 || v2.Failed != v2.Requests || v2.FirstFailure.Before(start) || v2.LastFailure.Before(v2.FirstFailure) {
		t.Errorf("v2 = %+v, want every request failed", v2)
	}
	if none.Requests == 0 || none.Failed != none.Requests {
		t.Errorf("no version = %+v, want failures", none)
	}
	if v1.FirstSeen.Before(start) || v1.LastSeen.Before(v1.FirstSeen) {
		t.Errorf("v1 first seen %v, last seen %v, started %v", v1.FirstSeen, v1.LastSeen, start)
	}
	total := v1.Requests + v2.Requests + none.Requests
	// Requests cut short by the end of the run are not counted: at most one per worker.
	if got := n.Load(); got < total || got > total+int64(l.Workers) {
		t.Errorf("the server answered %d requests, the load counted %d (%d workers)", got, total, l.Workers)
	}
}

func TestLoad_UnansweredRequestsFail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	l := &Load{URL: "http://" + addr + "/", Rate: 200, Workers: 2}
	counts := runLoad(t, l, func(c map[string]Count) bool { return c[""].Failed >= 5 })
	if c := counts[""]; c.Failed != c.Requests || len(counts) != 1 {
		t.Errorf("counts = %+v, want only failures without a version", counts)
	}
}

func TestLoad_KeepsItsRate(t *testing.T) {
	srv := httptest.NewServer(&Service{Version: "v1"})
	defer srv.Close()
	l := &Load{URL: srv.URL + "/", Rate: 50, Workers: 8}
	start := time.Now()
	counts := runLoad(t, l, func(c map[string]Count) bool { return c["v1"].Requests >= 20 })
	// 20 requests at 50/s take at least 380ms: the ticker never sends a burst.
	if elapsed := time.Since(start); elapsed < 380*time.Millisecond {
		t.Errorf("%d requests took %s at 50/s, want at least 380ms", counts["v1"].Requests, elapsed)
	}
}
