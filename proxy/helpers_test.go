package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// named returns a handler that answers 200 with its name in the body and X-Backend.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		_, _ = io.WriteString(w, name)
	})
}

// startBackend starts an HTTP server for h on 127.0.0.1:0 and returns its host:port.
func startBackend(tb testing.TB, h http.Handler) string {
	tb.Helper()
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// deadAddr returns a host:port on which nothing listens.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return addr
}

// serveMode says how the tests' proxies are served: "fast" (Proxy.Serve on a listener) or
// "net/http" (an httptest server with the Proxy as its handler). TestMain runs the suite
// once with each.
var serveMode = "fast"

// newProxy returns a proxy for app "shop" and the URL of a server in front of it.
func newProxy(tb testing.TB, cfg Config) (*Proxy, string) {
	tb.Helper()
	if cfg.App == "" {
		cfg.App = "shop"
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	p := New(cfg)
	tb.Cleanup(p.CloseIdleConnections)
	return p, serveProxy(tb, p, false)
}

// serveProxy serves p's main (or preview) listener on 127.0.0.1:0 the way serveMode says
// (with h2c allowed) and returns its URL; the server stops at cleanup.
func serveProxy(tb testing.TB, p *Proxy, preview bool) string {
	tb.Helper()
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("the proxy was served by %s", serveMode)
		}
	})
	if serveMode == "net/http" {
		var h http.Handler = p
		if preview {
			h = p.Preview()
		}
		s := httptest.NewUnstartedServer(h)
		s.Config.Protocols = Protocols()
		s.Start()
		tb.Cleanup(s.Close)
		return s.URL
	}
	return "http://" + serveFast(tb, p, preview)
}

// serveFast runs p.Serve (or ServePreview) on 127.0.0.1:0 until cleanup and returns the
// address.
func serveFast(tb testing.TB, p *Proxy, preview bool) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		if preview {
			done <- p.ServePreview(ctx, ln)
		} else {
			done <- p.Serve(ctx, ln)
		}
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func mustUpdate(tb testing.TB, p *Proxy, t Table) {
	tb.Helper()
	if err := p.Update(t); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

// weights builds a split from revision, weight pairs.
func weights(pairs ...any) slipway.Split {
	var s slipway.Split
	for i := 0; i < len(pairs); i += 2 {
		s.Weights = append(s.Weights, slipway.Weight{Revision: pairs[i].(string), Weight: pairs[i+1].(int)})
	}
	return s
}

// client returns an HTTP client that cleans up its idle connections.
func client(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends a request and returns its status and body; headers are name, value pairs.
func get(tb testing.TB, c *http.Client, method, url string, body io.Reader, headers ...string) (int, string, http.Header) {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return res.StatusCode, string(b), res.Header
}

// gate is a handler that blocks each request until released (or the request ends).
type gate struct {
	name    string
	release chan struct{}
	once    sync.Once
}

// startGate starts a backend that holds every request until the gate opens. The gate
// opens at cleanup before the server closes (Close waits for held requests).
func startGate(tb testing.TB, name string) (*gate, string) {
	tb.Helper()
	g := &gate{name: name, release: make(chan struct{})}
	addr := startBackend(tb, g)
	tb.Cleanup(g.open)
	return g, addr
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-g.release:
	case <-r.Context().Done():
		return
	}
	_, _ = io.WriteString(w, g.name)
}

// fakeClock is a settable clock for Metrics.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// count sends n GETs and counts the answering backends by body.
func count(tb testing.TB, c *http.Client, url string, n int, headers ...string) map[string]int {
	tb.Helper()
	got := map[string]int{}
	for range n {
		code, body, _ := get(tb, c, http.MethodGet, url, nil, headers...)
		if code != http.StatusOK {
			tb.Fatalf("GET %s: status %d body %q", url, code, body)
		}
		got[body]++
	}
	return got
}

// ctxTimeout returns a context that ends with the test or after d.
func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
