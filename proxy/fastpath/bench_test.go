package fastpath

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkServe is the fast path alone in process: a keep-alive client connection writes a
// GET to Serve, whose Router (a testRouter, one backend) sends it to a real backend over
// loopback. Package proxy's BenchmarkServe adds the routing table, the split and the
// metrics.
func BenchmarkServe(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer backend.Close()
	_, px := fastProxy(b, Config{}, backend.Listener.Addr().String())
	c, br := rawConn(b, px)
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
// of Cookie lines for a Router to search.
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

// sink keeps what a benchmark computes from being optimized away.
var sink int

// BenchmarkLargeHead measures what the fast path does with a large request head (parse,
// the header lookups package proxy's Router makes for a sticky split and a header route:
// every Cookie value, a header that is absent, one that is present, and the head sent to
// the backend without the hop-by-hop fields) against net/http's http.ReadRequest of the
// same bytes. Both must grow linearly with the head: compare -benchtime 1x runs with n
// doubled (SLIPWAY_HEAD_LINES, default 6,000 lines, about 160 KiB for ConnectionTokens).
func BenchmarkLargeHead(b *testing.B) {
	n := 6000
	if v, err := strconv.Atoi(os.Getenv("SLIPWAY_HEAD_LINES")); err == nil && v > 0 {
		n = v
	}
	for _, tt := range largeHeads(n) {
		b.Run(tt.name+"/fast", func(b *testing.B) {
			var r Request
			var out []byte
			b.SetBytes(int64(len(tt.head)))
			for b.Loop() {
				if !parseRequest(tt.head, &r) {
					b.Fatal("parseRequest refused the head")
				}
				cookies := 0
				for v, at := r.Header("Cookie", 0); at >= 0; v, at = r.Header("Cookie", at+1) {
					cookies += len(v)
				}
				_, _ = r.Header("X-User", 0)
				_, _ = r.Header("X-Field-1", 0)
				out = appendHead(out[:0], &r, "127.0.0.1", "127.0.0.1:1")
				sink += cookies
			}
		})
		b.Run(tt.name+"/net-http", func(b *testing.B) {
			b.SetBytes(int64(len(tt.head)))
			for b.Loop() {
				if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.head))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
