package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy.Serve's own behaviour (parsing, framing, keep-alive, hand-offs, stopping) is
// tested in package fastpath; the tests of this package run once through Serve and once
// through ServeHTTP (TestMain). Here: what ServeWith adds.

// rawConn dials addr; reads and writes fail after 10 s.
func rawConn(tb testing.TB, addr string) (net.Conn, *bufio.Reader) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func write(tb testing.TB, c net.Conn, s string) {
	tb.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		tb.Fatal(err)
	}
}

// readResponse reads one response and its whole body.
func readResponse(tb testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	tb.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return res, string(b)
}

// fastOnly skips a test of Serve itself in the suite's second pass (net/http).
func fastOnly(t *testing.T) {
	if serveMode != "fast" {
		t.Skip("a test of Serve: it ran in the first pass")
	}
}

func TestServeWith_FollowsTheCurrentProxy(t *testing.T) {
	fastOnly(t)
	a, b := New(Config{App: "shop"}), New(Config{App: "shop"})
	for _, p := range []*Proxy{a, b} {
		t.Cleanup(p.CloseIdleConnections)
	}
	mustUpdate(t, a, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "a", Addr: startBackend(t, named("a"))}}}})
	mustUpdate(t, b, Table{Split: weights("stable", 100), Backends: map[string][]Backend{"stable": {{ID: "b", Addr: startBackend(t, named("b"))}}},
		Preview: "stable"})
	var cur atomic.Pointer[Proxy]
	cur.Store(a)
	serve := func(preview bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ServeWith(ctx, ln, cur.Load, preview) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ServeWith: %v", err)
			}
		})
		return ln.Addr().String()
	}
	main, preview := serve(false), serve(true)
	c, br := rawConn(t, main)
	pc, pbr := rawConn(t, preview)
	for _, want := range []string{"a", "b"} {
		if want == "b" {
			cur.Store(b)
		}
		write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, body := readResponse(t, br, http.MethodGet); body != want {
			t.Errorf("main listener, same connection: %q, want %q", body, want)
		}
	}
	write(t, pc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, pbr, http.MethodGet); body != "b" {
		t.Errorf("preview listener: %q, want b", body)
	}
}
