package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The tests below aim at the RawConn read loop of the client side (conn_raw.go): it waits
// for the next request without a read first, which is right only if no byte that came
// since the last read can be missed. Each would hang (and fail at rawConn's 10 s deadline)
// if one were.

// The next request arrives while the proxy serves the previous one: after it read that one,
// before it answered.
func TestServe_RequestSentWhileThePreviousIsServed(t *testing.T) {
	fastOnly(t)
	g, held := startGate(t, "held")
	p, px := fastProxy(t, Config{}, held)
	c, br := rawConn(t, px)
	write(t, c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the first request at the backend", func() bool { return p.InFlight("b0") == 1 })
	write(t, c, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the second request is in the proxy's socket buffer
	g.open()
	for i := 1; i <= 2; i++ {
		if res, body := readResponse(t, br, http.MethodGet); res.StatusCode != 200 || body != "held" {
			t.Fatalf("response %d: %d %q", i, res.StatusCode, body)
		}
	}
	// And the connection goes on as usual.
	write(t, c, "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, br, http.MethodGet); body != "held" {
		t.Fatalf("third response %q", body)
	}
}

// More pipelined requests than the connection's first buffer holds, in one write, each 64
// bytes long so that a read fills the buffer with whole requests: the proxy must read again
// after serving them rather than wait for bytes that are already there.
func TestServe_PipelinedRequestsBeyondTheBuffer(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{}, startBackend(t, echo))
	c, br := rawConn(t, px)
	const n = 256 // 16 KB of requests, four times connBufSize
	var b strings.Builder
	for i := range n {
		req := fmt.Sprintf("GET /r%036d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		if len(req) != 64 || connBufSize%len(req) != 0 {
			t.Fatalf("a request of %d bytes does not tile the %d-byte buffer", len(req), connBufSize)
		}
		b.WriteString(req)
	}
	go func() { _, _ = c.Write([]byte(b.String())) }()
	for i := range n {
		if _, body := readResponse(t, br, http.MethodGet); body != fmt.Sprintf("GET /r%036d ", i) {
			t.Fatalf("response %d: %q", i, body)
		}
	}
}

// A head in two writes, then a body that comes later: the ordinary loop serves that
// request, and the next one is served by the RawConn loop again.
func TestServe_SplitHeadAndLateBodyThenPlainRequests(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{}, startBackend(t, echo))
	c, br := rawConn(t, px)
	write(t, c, "POST /split HTTP/1.1\r\nHost: a\r\n")
	time.Sleep(30 * time.Millisecond)
	write(t, c, "Content-Length: 5\r\n\r\n")
	time.Sleep(30 * time.Millisecond)
	write(t, c, "hello")
	if _, body := readResponse(t, br, http.MethodPost); body != "POST /split hello" {
		t.Fatalf("split request: %q", body)
	}
	for i := range 20 {
		write(t, c, fmt.Sprintf("GET /after%d HTTP/1.1\r\nHost: a\r\n\r\n", i))
		if _, body := readResponse(t, br, http.MethodGet); body != fmt.Sprintf("GET /after%d ", i) {
			t.Fatalf("request %d after the split one: %q", i, body)
		}
	}
}
