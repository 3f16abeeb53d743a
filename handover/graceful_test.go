package handover_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/handover"
)

// serveGraceful serves h on ln through a Graceful and returns it with Serve's result.
func serveGraceful(t testing.TB, ln net.Listener, h http.Handler) (*handover.Graceful, <-chan error) {
	t.Helper()
	g := handover.NewGraceful(&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() { _ = g.Server().Close() })
	return g, done
}

func TestGraceful_StopOnASharedSocketDropsNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := handover.ListenerFile(ln)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := net.FileListener(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	answer := func(who string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, who) })
	}
	old, oldDone := serveGraceful(t, ln, answer("old"))
	next, nextDone := serveGraceful(t, shared, answer("next"))

	// Clients on new connections each time and on kept-alive ones, as fast as they can.
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var first []string
	var wg sync.WaitGroup
	byWho := map[string]int{}
	for i := range 6 {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 0}}
		wg.Go(func() {
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				code, body, err := get(c, "http://"+ln.Addr().String()+"/")
				mu.Lock()
				if err == nil && code == http.StatusOK {
					ok.Add(1)
					byWho[body]++
				} else {
					failed.Add(1)
					if len(first) < 5 {
						first = append(first, errString(err))
					}
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // a load window: both servers take requests
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := old.Stop(sctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := <-oldDone; err != nil {
		t.Errorf("Serve after Stop: %v, want nil", err)
	}
	time.Sleep(300 * time.Millisecond) // a load window: the one left takes them all
	cancel()
	wg.Wait()

	t.Logf("%d answered (%v), %d failed", ok.Load(), byWho, failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed while one of two servers on a socket stopped; first: %q", failed.Load(), first)
	}
	if byWho["old"] == 0 || byWho["next"] == 0 {
		t.Errorf("both servers should have answered: %v", byWho)
	}
	// The socket stays open in the next server.
	c := client(t)
	if code, body, err := get(c, "http://"+ln.Addr().String()+"/"); err != nil || code != http.StatusOK || body != "next" {
		t.Errorf("after the stop: %d %q %v; want the next server to answer", code, body, err)
	}
	_ = next.Stop(sctx)
	if err := <-nextDone; err != nil {
		t.Errorf("Serve after Stop: %v", err)
	}
}

func TestGraceful_StopLetsARequestInFlightFinish(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var finished atomic.Bool
	g, done := serveGraceful(t, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond) // a slow request: the stop comes while it is in flight
		_, _ = io.WriteString(w, "slow")
		finished.Store(true)
	}))
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	c := client(t)
	go func() {
		code, body, err := get(c, "http://"+ln.Addr().String()+"/")
		res <- result{code, body, err}
	}()
	<-started
	if err := g.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if !finished.Load() {
		t.Errorf("Stop returned before the request in flight was answered")
	}
	if r := <-res; r.err != nil || r.code != http.StatusOK || r.body != "slow" {
		t.Errorf("request in flight during Stop: %d %q %v", r.code, r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Stop: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("the listener still accepts after Stop")
	}
}

func TestGraceful_StopGivesUpWhenTheContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	g, done := serveGraceful(t, ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	}))
	c := client(t)
	go func() { _, _, _ = get(c, "http://"+ln.Addr().String()+"/") }()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := g.Stop(ctx); err == nil {
		t.Errorf("Stop with a request that never ends returned nil, want the context's error")
	}
	<-done
}

func client(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get fetches url and returns the status code and body.
func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
