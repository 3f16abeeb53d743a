package fastpath

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// serveMode says how the tests' listeners are served where a test can take either: "fast"
// (Serve, with a testRouter) or "net/http" (an httptest server with an
// httputil.ReverseProxy, the reference the fast path is held to). TestMain runs the suite
// once with each; the tests of Serve itself run in the first pass only (fastOnly).
var serveMode = "fast"

// TestMain runs the suite twice, served by the fast path and then by net/http, and checks
// that no goroutine is left behind.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.fuzz").Value.String() == "" && flag.Lookup("test.bench").Value.String() == "" {
		serveMode = "net/http"
		fmt.Println("--- again, served by net/http")
		code = m.Run()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fastOnly skips a test of Serve itself in the suite's second pass (net/http).
func fastOnly(t *testing.T) {
	if serveMode != "fast" {
		t.Skip("a test of Serve: it ran in the first pass")
	}
}

// testRouter is the Router of the tests: it sends each request to one of its backends
// (pick's choice, else the next in turn), retries a failed request once on the next
// backend when the fast path can replay it, and hands every request to net/http with
// handOff. It counts the requests in flight and keeps the statuses Done was given. As the
// Config's Handler it forwards what it is handed to its first backend by an
// httputil.ReverseProxy.
type testRouter struct {
	cfg Config // Handler is the router itself
	rp  *httputil.ReverseProxy

	turn     atomic.Uint32
	inflight atomic.Int64
	xs       sync.Pool // *testExchange

	mu      sync.Mutex // guards the fields below; a test changes them while Serve runs by set
	ups     []*Upstream
	pick    func(r *Request) int // nil: the next backend in turn
	handOff bool
	header  string // added to every answer
	codes   []int
}

// set runs f with rt's fields guarded.
func (rt *testRouter) set(f func()) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	f()
}

// newRouter returns a testRouter over the backends at addrs, served with cfg (a grace of
// 5 s when it has none). Its fields may be set until it is served; after, by set.
func newRouter(tb testing.TB, cfg Config, addrs ...string) *testRouter {
	tb.Helper()
	rt := &testRouter{cfg: cfg}
	for _, a := range addrs {
		u := NewUpstream(a, nil)
		tb.Cleanup(u.Retire)
		rt.ups = append(rt.ups, u)
	}
	if rt.cfg.ShutdownGrace == 0 {
		rt.cfg.ShutdownGrace = 5 * time.Second
	}
	rt.cfg.Handler = rt
	target := "127.0.0.1:1"
	if len(addrs) > 0 {
		target = addrs[0]
	}
	rt.rp = reverseProxy(tb, target)
	rt.xs.New = func() any { return new(testExchange) }
	return rt
}

// reverseProxy returns net/http's forwarder to the backend at addr, set as package proxy
// sets its own: the client's Host kept, X-Forwarded-* set, no compression, 502 on failure.
func reverseProxy(tb testing.TB, addr string) *httputil.ReverseProxy {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	tb.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", addr
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

func (rt *testRouter) Route(r *Request) Exchange {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.handOff {
		return nil
	}
	rt.inflight.Add(1)
	x := rt.xs.Get().(*testExchange)
	*x = testExchange{rt: rt, ups: rt.ups, header: rt.header}
	if n := len(rt.ups); n > 0 {
		if rt.pick != nil {
			x.i = rt.pick(r)
		} else {
			x.i = int(rt.turn.Add(1)) % n
		}
		x.u = rt.ups[x.i]
	}
	return x
}

func (rt *testRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.rp.ServeHTTP(w, r) }

// inFlight returns how many requests the fast path is serving.
func (rt *testRouter) inFlight() int64 { return rt.inflight.Load() }

// done returns the statuses the exchanges ended with, in order.
func (rt *testRouter) done() []int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]int(nil), rt.codes...)
}

// testExchange is a request a testRouter routed.
type testExchange struct {
	rt      *testRouter
	ups     []*Upstream // the router's when it routed the request
	header  string
	u       *Upstream
	i       int
	retried bool
}

func (x *testExchange) Upstream() *Upstream    { return x.u }
func (x *testExchange) ResponseHeader() string { return x.header }
func (x *testExchange) Unavailable() []byte    { return []byte("no backend\n") }

func (x *testExchange) Retry(_ error, replayable bool) *Upstream {
	if x.retried || !replayable || len(x.ups) < 2 {
		return nil
	}
	x.retried = true
	x.i = (x.i + 1) % len(x.ups)
	x.u = x.ups[x.i]
	return x.u
}

func (x *testExchange) Done(code int, _, _ time.Time) {
	rt := x.rt
	rt.mu.Lock()
	rt.codes = append(rt.codes, code)
	rt.mu.Unlock()
	rt.inflight.Add(-1)
	*x = testExchange{}
	rt.xs.Put(x)
}

// serveFast serves rt on 127.0.0.1:0 by Serve until cleanup and returns the address.
func serveFast(tb testing.TB, rt *testRouter) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, rt, rt.cfg) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// fastProxy serves, by Serve, a testRouter over the backends at addrs with cfg, and
// returns the router and the listener's address.
func fastProxy(tb testing.TB, cfg Config, addrs ...string) (*testRouter, string) {
	tb.Helper()
	rt := newRouter(tb, cfg, addrs...)
	return rt, serveFast(tb, rt)
}

// smuggleProxy serves a forwarder (as serveMode says) in front of the backend at addr and
// returns its host:port.
func smuggleProxy(tb testing.TB, addr string) string {
	tb.Helper()
	if serveMode == "fast" {
		_, px := fastProxy(tb, Config{}, addr)
		return px
	}
	s := httptest.NewUnstartedServer(reverseProxy(tb, addr))
	var ps http.Protocols
	ps.SetHTTP1(true)
	ps.SetUnencryptedHTTP2(true)
	s.Config.Protocols = &ps
	s.Start()
	tb.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

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
	held    atomic.Int64 // requests waiting at the gate
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
	g.held.Add(1)
	defer g.held.Add(-1)
	select {
	case <-g.release:
	case <-r.Context().Done():
		return
	}
	_, _ = io.WriteString(w, g.name)
}
