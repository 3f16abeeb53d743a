package fastpath

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/slipwaytest"
)

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

// echo answers with the method, path, the body it read and the trailer X-Sum if any.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s%s", r.Method, r.URL.Path, b, r.Trailer.Get("X-Sum"))
})

// connCounter counts the connections a backend server accepted.
func countingBackend(tb testing.TB, h http.Handler) (string, *atomic.Int64) {
	tb.Helper()
	var n atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
	s.Start()
	tb.Cleanup(s.Close)
	return s.Listener.Addr().String(), &n
}

func TestServe_KeepAliveReusesBothConnections(t *testing.T) {
	fastOnly(t)
	addr, conns := countingBackend(t, echo)
	_, px := fastProxy(t, Config{}, addr)
	c, br := rawConn(t, px)
	for i := range 200 {
		write(t, c, fmt.Sprintf("GET /n%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i))
		res, body := readResponse(t, br, http.MethodGet)
		if res.StatusCode != 200 || body != fmt.Sprintf("GET /n%d ", i) || res.Close {
			t.Fatalf("request %d: %d %q close=%v", i, res.StatusCode, body, res.Close)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("200 sequential requests opened %d backend connections, want 1", n)
	}
}

func TestServe_PipelinedRequestsAnswerInOrder(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{}, startBackend(t, echo))
	c, br := rawConn(t, px)
	write(t, c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"+
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"GET /4 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET /1 ", "POST /2 body", "POST /3 abc", "GET /4 "} {
		if _, body := readResponse(t, br, http.MethodGet); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
}

func TestServe_ChunkedBodies(t *testing.T) {
	fastOnly(t)
	chunks := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Done")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			http.NewResponseController(w).Flush()
		}
		w.Header().Set("X-Done", "yes")
	})
	_, px := fastProxy(t, Config{}, startBackend(t, echo))
	_, pxChunks := fastProxy(t, Config{}, startBackend(t, chunks))

	t.Run("request with trailer", func(t *testing.T) {
		c, br := rawConn(t, px)
		write(t, c, "PUT /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
			"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n")
		if _, body := readResponse(t, br, http.MethodPut); body != "PUT /up hello world42" {
			t.Errorf("backend saw %q", body)
		}
	})
	t.Run("response with trailer, HTTP/1.1 client", func(t *testing.T) {
		c, br := rawConn(t, pxChunks)
		write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		res, body := readResponse(t, br, http.MethodGet)
		if body != "part0;part1;part2;" || len(res.TransferEncoding) != 1 || res.Trailer.Get("X-Done") != "yes" {
			t.Errorf("got %q, TE %v, trailer %v", body, res.TransferEncoding, res.Trailer)
		}
	})
	t.Run("response to an HTTP/1.0 client is decoded and the connection closed", func(t *testing.T) {
		c, br := rawConn(t, pxChunks)
		write(t, c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		res, body := readResponse(t, br, http.MethodGet)
		if body != "part0;part1;part2;" || len(res.TransferEncoding) != 0 || !res.Close {
			t.Errorf("got %q, TE %v, close %v", body, res.TransferEncoding, res.Close)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("connection left open: %v", err)
		}
	})
}

// TestServe_LargeBodiesStream sends and receives 8 MiB and checks that both directions
// stream: the backend has the start of the upload before the client sends the rest, and
// the client has the start of the download before the backend sends the rest.
func TestServe_LargeBodiesStream(t *testing.T) {
	fastOnly(t)
	const size = 8 << 20
	half := make(chan struct{})
	resume := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			sum := sha256.New()
			if _, err := io.CopyN(sum, r.Body, size/2); err != nil {
				return
			}
			close(half)
			n, _ := io.Copy(sum, r.Body)
			fmt.Fprintf(w, "%d %x", size/2+n, sum.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = w.Write(bytes.Repeat([]byte("x"), size/2))
		select {
		case <-resume:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("x"), size/2))
	})
	_, px := fastProxy(t, Config{}, startBackend(t, h))
	c, br := rawConn(t, px)

	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	write(t, c, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size))
	if _, err := c.Write(payload[:size/2]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-half:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend did not get the first half of the upload: the proxy buffers it")
	}
	if _, err := c.Write(payload[size/2:]); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d %x", size, sha256.Sum256(payload))
	if _, body := readResponse(t, br, http.MethodPost); body != want {
		t.Fatalf("upload: backend saw %q, want %q", body, want)
	}

	write(t, c, "GET /down HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.CopyN(io.Discard, res.Body, size/2); err != nil {
		t.Fatalf("first half of the download: %v (buffered by the proxy?)", err)
	}
	close(resume)
	if n, err := io.Copy(io.Discard, res.Body); err != nil || n != size/2 {
		t.Fatalf("second half: %d bytes, %v", n, err)
	}
}

// rawBackend accepts connections and runs serve on each.
func rawBackend(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	tb.Cleanup(func() { _ = l.Close(); <-done })
	return l.Addr().String()
}

// readRequestHead reads one request head from c.
func readRequestHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

func TestServe_BodyUntilCloseIsRechunkedAndStreams(t *testing.T) {
	fastOnly(t)
	more := make(chan struct{})
	addr := rawBackend(t, func(c net.Conn) {
		if readRequestHead(bufio.NewReader(c)) != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst;")
		select {
		case <-more:
		case <-time.After(5 * time.Second):
		}
		_, _ = io.WriteString(c, "second")
	})
	_, px := fastProxy(t, Config{}, addr)
	c, br := rawConn(t, px)
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.TransferEncoding) != 1 || res.Close {
		t.Errorf("TE %v close %v: want a chunked, keep-alive answer", res.TransferEncoding, res.Close)
	}
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "first;" {
		t.Fatalf("first part: %q %v (buffered by the proxy?)", first, err)
	}
	close(more)
	if rest, err := io.ReadAll(res.Body); err != nil || string(rest) != "second" {
		t.Fatalf("rest: %q %v", rest, err)
	}
	// The client connection is still usable.
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, br, http.MethodGet); body != "first;second" {
		t.Errorf("second request: %q", body)
	}
}

func TestServe_ResponsesWithoutBody(t *testing.T) {
	fastOnly(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		}
	})
	_, px := fastProxy(t, Config{}, startBackend(t, h))
	c, br := rawConn(t, px)
	for _, tt := range []struct {
		method, path string
		code         int
		length       int64
	}{
		{http.MethodHead, "/", 200, 5},
		{http.MethodGet, "/204", 204, -1},
		{http.MethodGet, "/304", 304, -1},
		{http.MethodGet, "/", 200, 5},
	} {
		write(t, c, fmt.Sprintf("%s %s HTTP/1.1\r\nHost: a\r\n\r\n", tt.method, tt.path))
		res, body := readResponse(t, br, tt.method)
		want := ""
		if tt.method == http.MethodGet && tt.code == 200 {
			want = "hello"
		}
		if res.StatusCode != tt.code || body != want || (tt.length >= 0 && res.ContentLength != tt.length) {
			t.Errorf("%s %s: %d %q length %d", tt.method, tt.path, res.StatusCode, body, res.ContentLength)
		}
	}
}

func TestServe_HTTP10(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{}, startBackend(t, named("a")))
	t.Run("closes after the response", func(t *testing.T) {
		c, br := rawConn(t, px)
		write(t, c, "GET / HTTP/1.0\r\n\r\n")
		if res, body := readResponse(t, br, http.MethodGet); body != "a" || !res.Close {
			t.Errorf("got %q close %v", body, res.Close)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("connection left open: %v", err)
		}
	})
	t.Run("keep-alive when asked", func(t *testing.T) {
		c, br := rawConn(t, px)
		for range 3 {
			write(t, c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			res, body := readResponse(t, br, http.MethodGet)
			if body != "a" || res.Header.Get("Connection") != "keep-alive" {
				t.Fatalf("got %q, Connection %q", body, res.Header.Get("Connection"))
			}
		}
	})
	t.Run("HTTP/1.1 Connection: close", func(t *testing.T) {
		c, br := rawConn(t, px)
		write(t, c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if res, _ := readResponse(t, br, http.MethodGet); !res.Close {
			t.Error("no Connection: close in the answer")
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("connection left open: %v", err)
		}
	})
}

func TestServe_HeaderLimits(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{}, startBackend(t, named("a")))
	c, br := rawConn(t, px)
	// A head just under the limit is served by the fast path...
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("b", 900<<10)+"\r\n\r\n")
	if res, body := readResponse(t, br, http.MethodGet); res.StatusCode != 200 || body != "a" {
		t.Fatalf("900 KiB head: %d %q", res.StatusCode, body)
	}
	// ...and one over it gets net/http's 431.
	c2, br2 := rawConn(t, px)
	go func() {
		_, _ = io.WriteString(c2, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("b", 2<<20)+"\r\n\r\n")
	}()
	if res, _ := readResponse(t, br2, http.MethodGet); res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MiB head: %d, want 431", res.StatusCode)
	}
}

func TestServe_HandsOffToNetHTTP(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{}, startBackend(t, echo))
	t.Run("malformed request", func(t *testing.T) {
		c, br := rawConn(t, px)
		write(t, c, "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
		if res, _ := readResponse(t, br, http.MethodGet); res.StatusCode != http.StatusBadRequest {
			t.Errorf("got %d, want net/http's 400", res.StatusCode)
		}
	})
	t.Run("Expect: 100-continue after fast requests on the same connection", func(t *testing.T) {
		c, br := rawConn(t, px)
		write(t, c, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, body := readResponse(t, br, http.MethodGet); body != "GET /fast " {
			t.Fatalf("fast request: %q", body)
		}
		write(t, c, "POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusContinue {
			t.Fatalf("want 100 Continue, got %v %v", res, err)
		}
		write(t, c, "data")
		// net/http's forwarder may pass on the backend's own 100 Continue too: the answer is
		// the final response.
		if a := readAnswer(br, http.MethodPost); a.err != nil || a.body != "POST /slow data" {
			t.Fatalf("after 100-continue: %v", a)
		}
		// The connection now belongs to net/http, which keeps serving it.
		write(t, c, "GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, body := readResponse(t, br, http.MethodGet); body != "GET /again " {
			t.Errorf("after the hand-off: %q", body)
		}
	})
}

func TestServe_BackendClosesMidResponse(t *testing.T) {
	fastOnly(t)
	addr := rawBackend(t, func(c net.Conn) {
		if readRequestHead(bufio.NewReader(c)) != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
	})
	rt, px := fastProxy(t, Config{}, addr)
	c, br := rawConn(t, px)
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(res.Body); err == nil {
		t.Errorf("client read %q without error from a cut response", b)
	}
	slipwaytest.Eventually(t, 5*time.Second, "the request to leave the in-flight count", func() bool { return rt.inFlight() == 0 })
}

func TestServe_RetriesBufferedBodyButNotStreamedOne(t *testing.T) {
	fastOnly(t)
	var hits atomic.Int64
	live := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	_, px := fastProxy(t, Config{}, deadAddr(t), startBackend(t, live))
	c := client(t)
	small := strings.Repeat("s", 1000)
	for range 20 {
		if code, body, _ := get(t, c, http.MethodPost, "http://"+px, strings.NewReader(small)); code != 200 || body != "1000" {
			t.Fatalf("small POST: %d %q, want it retried on the live backend", code, body)
		}
	}
	big := strings.Repeat("b", maxReplayBody+1)
	codes := map[int]int{}
	hits.Store(0)
	for range 30 {
		code, _, _ := get(t, c, http.MethodPost, "http://"+px, strings.NewReader(big))
		codes[code]++
	}
	if codes[http.StatusBadGateway] == 0 || int(hits.Load()) != codes[http.StatusOK] {
		t.Errorf("large POST: statuses %v, live saw %d: want some 502 and no retry", codes, hits.Load())
	}
}

func TestServe_StaleBackendConnectionIsNotUsed(t *testing.T) {
	fastOnly(t)
	var closed atomic.Int64
	s := httptest.NewUnstartedServer(echo)
	s.Config.IdleTimeout = 20 * time.Millisecond
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	_, px := fastProxy(t, Config{}, s.Listener.Addr().String())
	c := client(t)
	for i := range 3 {
		if code, body, _ := get(t, c, http.MethodPost, "http://"+px+"/p", strings.NewReader("x")); code != 200 || body != "POST /p x" {
			t.Fatalf("POST %d: %d %q", i, code, body)
		}
		// The backend closes the idle connection the proxy keeps: a POST (not retried
		// after a failure) must not be sent on it.
		slipwaytest.Eventually(t, 5*time.Second, "the backend to close the idle connection", func() bool { return closed.Load() == int64(i+1) })
	}
}

func TestServe_ShutdownLetsRequestsFinish(t *testing.T) {
	fastOnly(t)
	g, held := startGate(t, "held")
	rt := newRouter(t, Config{}, startBackend(t, named("stable")), held)
	rt.pick = func(r *Request) int {
		if v, _ := r.Header("X-Hold", 0); v == "1" {
			return 1
		}
		return 0
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, rt, rt.cfg) }()

	idle, idleBR := rawConn(t, ln.Addr().String())
	write(t, idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body := readResponse(t, idleBR, http.MethodGet); body != "stable" {
		t.Fatalf("got %q", body)
	}
	busy, busyBR := rawConn(t, ln.Addr().String())
	write(t, busy, "GET / HTTP/1.1\r\nHost: a\r\nX-Hold: 1\r\n\r\n")
	slipwaytest.Eventually(t, 5*time.Second, "the held request", func() bool { return g.held.Load() == 1 })

	cancel()
	// The idle connection is closed at once; the busy one gets its answer, then Serve returns.
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	g.open()
	if res, body := readResponse(t, busyBR, http.MethodGet); body != "held" || !res.Close {
		t.Errorf("busy connection: %q close %v", body, res.Close)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestServe_H2CPriorKnowledgeAndPlainHTTPOnOneListener(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{}, startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})))
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &ps}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + px)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); res.ProtoMajor != 2 || string(b) != "HTTP/1.1" {
		t.Errorf("h2c client: %s %q", res.Proto, b)
	}
}

// TestServe_FollowsTheRouter: each request goes where the Router says, its answer carries
// the Router's header lines, and Done gets the status the client got: the backend's, 502
// when the backend failed, 503 with the Router's body when it has no backend; a request
// the Router hands over is served by the Handler and never Done.
func TestServe_FollowsTheRouter(t *testing.T) {
	fastOnly(t)
	rt := newRouter(t, Config{}, startBackend(t, named("a")), deadAddr(t))
	rt.header = "X-Router: 1\r\n"
	rt.pick = func(r *Request) int {
		if r.Method() == http.MethodDelete {
			return 1
		}
		return 0
	}
	c, br := rawConn(t, serveFast(t, rt))
	for _, tt := range []struct {
		method string
		code   int
		body   string
	}{
		{http.MethodGet, 200, "a"},
		{http.MethodDelete, 200, "a"}, // the dead backend, then the retry
		{http.MethodHead, 200, ""},
	} {
		write(t, c, tt.method+" / HTTP/1.1\r\nHost: a\r\n\r\n")
		res, body := readResponse(t, br, tt.method)
		if res.StatusCode != tt.code || body != tt.body || res.Header.Get("X-Router") != "1" {
			t.Errorf("%s: %d %q X-Router %q", tt.method, res.StatusCode, body, res.Header.Get("X-Router"))
		}
	}
	rt.set(func() { rt.ups, rt.pick = rt.ups[1:], nil }) // the dead backend only: no retry
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if res, body := readResponse(t, br, http.MethodGet); res.StatusCode != 502 || res.Header.Get("X-Router") != "1" {
		t.Errorf("dead backend: %d %q X-Router %q", res.StatusCode, body, res.Header.Get("X-Router"))
	}
	rt.set(func() { rt.ups = nil })
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, body := readResponse(t, br, http.MethodGet)
	if res.StatusCode != 503 || body != "no backend\n" || res.Header.Get("Retry-After") != "1" || res.Header.Get("X-Router") != "1" {
		t.Errorf("no backend: %d %q %v", res.StatusCode, body, res.Header)
	}
	rt.set(func() { rt.handOff = true })
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if res, body := readResponse(t, br, http.MethodGet); res.StatusCode != 200 || body != "a" || res.Header.Get("X-Router") != "" {
		t.Errorf("handed over: %d %q X-Router %q", res.StatusCode, body, res.Header.Get("X-Router"))
	}
	slipwaytest.Eventually(t, 5*time.Second, "the exchanges to end", func() bool { return rt.inFlight() == 0 })
	if got, want := fmt.Sprint(rt.done()), "[200 200 200 502 503]"; got != want {
		t.Errorf("Done got %s, want %s", got, want)
	}
}
