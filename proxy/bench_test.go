package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"slipway.dev/slipway/proxy/fastpath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"slipway.dev/slipway"
)

// benchTable is a canary at 20% with three instances per revision and two header routes
// that the benchmark request does not match (so the match cost is paid in full).
func benchTable() Table {
	bs := func(rev string) []Backend {
		return []Backend{
			{ID: rev + "-1", Addr: "127.0.0.1:1"},
			{ID: rev + "-2", Addr: "127.0.0.1:2"},
			{ID: rev + "-3", Addr: "127.0.0.1:3"},
		}
	}
	return Table{
		Split: slipway.Split{
			Weights: []slipway.Weight{{Revision: "canary", Weight: 20}, {Revision: "stable", Weight: 80}},
			Routes: []slipway.Route{
				{Name: "beta", Revision: "canary", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}},
				{Name: "testers", Revision: "canary", Match: []slipway.HeaderMatch{{Cookie: "tester", Regex: "^[a-z]+$"}}},
			},
		},
		Backends: map[string][]Backend{"canary": bs("canary"), "stable": bs("stable")},
	}
}

// benchRoute measures route match + split + backend pick (and the in-flight count in and
// out), with no I/O.
func benchRoute(b *testing.B, cfg Config) {
	cfg.App = "shop"
	p := New(cfg)
	if err := p.Update(benchTable()); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://shop.test/cart", nil)
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Cookie", "theme=dark; slipway_shop=0123456789abcdef0123456789abcdef; tester=X1")
	w := httptest.NewRecorder()
	rs := &reqState{}
	b.ReportAllocs()
	for b.Loop() {
		rs.w, rs.in, rs.hasBucket = w, r, false
		be := p.acquire(rs)
		be.inflight.Add(-1)
	}
	if len(w.Header()["Set-Cookie"]) != 0 {
		b.Fatal("the benchmark request set a cookie: it is not the steady state")
	}
}

func BenchmarkRoute(b *testing.B) { benchRoute(b, Config{}) }

func BenchmarkRouteSticky(b *testing.B) {
	benchRoute(b, Config{Stickiness: &slipway.Stickiness{Enabled: true}})
}

// BenchmarkServeHTTP is the whole proxy in process: a request through Proxy.ServeHTTP (with
// metrics) to a real backend over loopback, keep-alive.
func BenchmarkServeHTTP(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer backend.Close()
	p := New(Config{App: "shop", Metrics: NewMetrics(prometheus.NewRegistry()), Stickiness: &slipway.Stickiness{Enabled: true}})
	defer p.CloseIdleConnections()
	addr := backend.Listener.Addr().String()
	if err := p.Update(Table{
		Split:    slipway.Split{Weights: []slipway.Weight{{Revision: "canary", Weight: 20}, {Revision: "stable", Weight: 80}}},
		Backends: map[string][]Backend{"canary": {{ID: "c", Addr: addr}}, "stable": {{ID: "s", Addr: addr}}},
	}); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://shop.test/", nil)
	r.Header.Set("Cookie", "slipway_shop=0123456789abcdef0123456789abcdef")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		p.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// discardWriter is a minimal http.ResponseWriter (no buffering of the body).
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) { w.code = code }
func (w *discardWriter) Flush()               {}

// BenchmarkReverseProxyBaseline is a bare httputil.ReverseProxy to the same backend, as a
// yardstick for BenchmarkServeHTTP (the difference is the proxy's own cost).
func BenchmarkReverseProxyBaseline(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer backend.Close()
	tr := newTransport()
	defer tr.CloseIdleConnections()
	addr := backend.Listener.Addr().String()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", addr
			pr.SetXForwarded()
		},
		Transport:     tr,
		FlushInterval: -1,
		BufferPool:    &fastpath.BufferPool{},
	}
	r := httptest.NewRequest(http.MethodGet, "http://shop.test/", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		rp.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkServe is the whole fast path in process: a keep-alive client connection writes
// a GET to Proxy.Serve (with metrics), which forwards it to a real backend over loopback.
func BenchmarkServe(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer backend.Close()
	p := New(Config{App: "shop", Metrics: NewMetrics(prometheus.NewRegistry()), Stickiness: &slipway.Stickiness{Enabled: true}})
	defer p.CloseIdleConnections()
	addr := backend.Listener.Addr().String()
	if err := p.Update(Table{
		Split:    slipway.Split{Weights: []slipway.Weight{{Revision: "canary", Weight: 20}, {Revision: "stable", Weight: 80}}},
		Backends: map[string][]Backend{"canary": {{ID: "c", Addr: addr}}, "stable": {{ID: "s", Addr: addr}}},
	}); err != nil {
		b.Fatal(err)
	}
	c, br := rawConn(b, serveFast(b, p, false))
	req := []byte("GET / HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\nCookie: slipway_shop=0123456789abcdef0123456789abcdef\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// largeHeads are request heads of hundreds of KiB built to make per-header work add up:
// a Connection header listing thousands of names with as many header lines, and thousands
// of Cookie lines for a sticky split to search.
func largeHeads(n int) []struct{ name, head string } {
	var conn, fields, cookies strings.Builder
	for i := range n {
		fmt.Fprintf(&conn, "x-hop-%d, ", i)
		fmt.Fprintf(&fields, "X-Field-%d: v\r\n", i)
		fmt.Fprintf(&cookies, "Cookie: c%d=v\r\n", i)
	}
	return []struct{ name, head string }{
		{"ConnectionTokens", "GET /cart HTTP/1.1\r\nHost: shop.test\r\nConnection: " + conn.String() + "keep-alive\r\n" + fields.String() + "\r\n"},
		{"Cookies", "GET /cart HTTP/1.1\r\nHost: shop.test\r\n" + cookies.String() + "Cookie: user=42\r\n\r\n"},
	}
}

// BenchmarkRouteLargeHead measures the route match and the sticky split over the headers
// and cookies of a large request head (read once by net/http). It must grow linearly with
// the head: compare -benchtime 1x runs with n doubled (SLIPWAY_HEAD_LINES, default 6,000
// lines). The fast path's share (parsing, the header lookups a Router makes, the head sent
// to the backend) is package fastpath's BenchmarkLargeHead.
func BenchmarkRouteLargeHead(b *testing.B) {
	n := 6000
	if v, err := strconv.Atoi(os.Getenv("SLIPWAY_HEAD_LINES")); err == nil && v > 0 {
		n = v
	}
	p := New(Config{App: "shop", Stickiness: &slipway.Stickiness{Enabled: true, Header: "X-User", Cookie: "user"}})
	t := benchTable()
	t.Split.Routes = append(t.Split.Routes, slipway.Route{Name: "field", Revision: "canary",
		Match: []slipway.HeaderMatch{{Header: "X-Field-1", Exact: "no"}}})
	if err := p.Update(t); err != nil {
		b.Fatal(err)
	}
	for _, tt := range largeHeads(n) {
		b.Run(tt.name, func(b *testing.B) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.head)))
			if err != nil {
				b.Fatal(err)
			}
			w := httptest.NewRecorder()
			rs := &reqState{}
			b.SetBytes(int64(len(tt.head)))
			for b.Loop() {
				clear(w.Header()) // a head without the user's cookie gets a new one each time
				rs.w, rs.in, rs.hasBucket = w, r, false
				be := p.acquire(rs)
				be.inflight.Add(-1)
			}
		})
	}
}
