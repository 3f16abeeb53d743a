package fastpath

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/slipwaytest"
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
	rt, px := fastProxy(t, Config{}, held)
	c, br := rawConn(t, px)
	write(t, c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
	slipwaytest.Eventually(t, 5*time.Second, "the first request at the backend", func() bool { return rt.inFlight() == 1 })
	write(t, c, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
	// Widens the window on purpose: the second request lies in the proxy's socket buffer
	// (nothing the test can watch) before the first is answered.
	time.Sleep(50 * time.Millisecond)
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
	// A client that trickles its request: each pause lets the proxy read what came so far.
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

// A client that reads a large answer slowly: the proxy's writes to it fill the socket
// buffers and must wait until the client reads again, losing and reordering nothing; the
// connection then serves the next request as usual.
func TestServe_SlowClientGetsTheWholeAnswer(t *testing.T) {
	fastOnly(t)
	const size = 4 << 20
	payload := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(payload)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("Content-Length", fmt.Sprint(size))
			_, _ = w.Write(payload)
			return
		}
		_, _ = io.WriteString(w, "small")
	})
	_, px := fastProxy(t, Config{}, startBackend(t, h))
	c, br := rawConn(t, px)
	write(t, c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // the proxy fills the socket buffers meanwhile
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	buf := make([]byte, 64<<10)
	var got int64
	for {
		n, err := res.Body.Read(buf)
		sum.Write(buf[:n])
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		if got < size/2 {
			time.Sleep(time.Millisecond) // slowly for the first half
		}
	}
	if want := sha256.Sum256(payload); got != size || !bytes.Equal(sum.Sum(nil), want[:]) {
		t.Fatalf("got %d bytes (want %d), sha256 match %v", got, size, bytes.Equal(sum.Sum(nil), want[:]))
	}
	write(t, c, "GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, br, http.MethodGet); body != "small" {
		t.Fatalf("next request: %q", body)
	}
}

// A client that goes away in the middle of a large answer: the proxy's write fails, the
// connection ends, and the request is counted out of its backend.
func TestServe_ClientGoneMidAnswer(t *testing.T) {
	fastOnly(t)
	chunk := bytes.Repeat([]byte("y"), 64<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 1024; i++ { // 64 MiB at most, far more than the socket buffers
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	rt, px := fastProxy(t, Config{}, startBackend(t, h))
	c, br := rawConn(t, px)
	write(t, c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	slipwaytest.Eventually(t, 5*time.Second, "the request at the backend", func() bool { return rt.inFlight() == 1 })
	if err := c.(*net.TCPConn).SetLinger(0); err != nil { // close with a reset
		t.Fatal(err)
	}
	c.Close()
	slipwaytest.Eventually(t, 5*time.Second, "the request counted out", func() bool { return rt.inFlight() == 0 })
}
