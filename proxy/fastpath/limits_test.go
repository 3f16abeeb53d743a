package fastpath

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Limits the fast path shares with net/http: what a target may hold, how large a head may
// be, how long a connection may take to send one, how many connections a listener holds.

// TestSmuggle_RequestTargets: a target net/http cannot parse is refused (400) before any
// backend sees it.
func TestSmuggle_RequestTargets(t *testing.T) {
	for _, tt := range []struct {
		target string
		code   int
	}{
		{"/%", 400},
		{"/%zz", 400},
		{"/a%2", 400},
		{"/a%2fb%20c", 200},
		{"/a?b=%", 200}, // net/http does not check the query's escapes
	} {
		t.Run(tt.target, func(t *testing.T) {
			rec, addr := startRecorder(t, nil)
			px := smuggleProxy(t, addr)
			a := readAnswerOf(t, px, "GET "+tt.target+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if a.err != nil || a.code != tt.code {
				t.Errorf("got %v, want %d", a, tt.code)
			}
			if n := len(rec.requests()); (tt.code == 200) != (n == 1) {
				t.Errorf("the backend saw %d requests:%s", n, rec.log())
			}
		})
	}
}

// TestSmuggle_HeadSizeLimit: a head of net/http's largest size is served, one byte more is
// answered 431, whether it comes in one write or in many.
//
// net/http's own limit is not exact when it serves h2c too: the bytes it reads while it
// looks for the HTTP/2 preface (up to 4 KiB) do not count. So the net/http pass checks only
// heads past that slop.
func TestSmuggle_HeadSizeLimit(t *testing.T) {
	rec, addr := startRecorder(t, nil)
	px := smuggleProxy(t, addr)
	head := func(n int) string {
		const start, end = "GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ", "\r\n\r\n"
		return start + strings.Repeat("b", n-len(start)-len(end)) + end
	}
	for _, tt := range []struct {
		size, code int
		fastOnly   bool
	}{
		{maxHeadBytes, 200, false},
		{maxHeadBytes + 1, http.StatusRequestHeaderFieldsTooLarge, true},
		{maxHeadBytes + 200, http.StatusRequestHeaderFieldsTooLarge, true},
		{maxHeadBytes + 4097, http.StatusRequestHeaderFieldsTooLarge, false},
	} {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			if tt.fastOnly {
				fastOnly(t)
			}
			for _, chunk := range []int{tt.size, 1000} {
				c, br := dialProxy(t, px)
				go func() {
					for b := head(tt.size); b != ""; {
						n := min(chunk, len(b))
						if _, err := io.WriteString(c, b[:n]); err != nil {
							return
						}
						b = b[n:]
					}
				}()
				if a := readAnswer(br, http.MethodGet); a.err != nil || a.code != tt.code {
					t.Errorf("head of %d bytes in writes of %d: got %v, want %d", tt.size, chunk, a, tt.code)
				}
			}
		})
	}
	if n := len(rec.requests()); n != 2 {
		t.Errorf("the backend saw %d requests, want 2", n)
	}
}

// A connection that sends nothing is closed readHeaderTimeout after its accept, as
// net/http's server closes it, rather than kept for the idle timeout.
func TestServe_SilentConnectionClosedAfterHeaderTimeout(t *testing.T) {
	fastOnly(t)
	t.Parallel()
	_, px := fastProxy(t, Config{}, startBackend(t, named("a")))
	type conn struct {
		first string
		nc    net.Conn
		start time.Time
	}
	var conns []conn
	for _, first := range []string{"", "GET / HTTP/1.1\r\n"} {
		nc, err := net.Dial("tcp", px)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns = append(conns, conn{first, nc, time.Now()})
		write(t, nc, first)
	}
	for _, c := range conns {
		if err := c.nc.SetReadDeadline(c.start.Add(readHeaderTimeout + 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := c.nc.Read(make([]byte, 1))
		if took := time.Since(c.start); !errors.Is(err, io.EOF) || took < readHeaderTimeout-time.Second {
			t.Errorf("sent %q: read %d bytes, %v after %v; want EOF after %v", c.first, n, err, took, readHeaderTimeout)
		}
	}
}

// At Config.MaxConns open connections (handed-off ones included), the listener accepts no
// more until one closes.
func TestServe_MaxConns(t *testing.T) {
	fastOnly(t)
	_, px := fastProxy(t, Config{MaxConns: 2}, startBackend(t, echo))
	served := func(c net.Conn, br *bufio.Reader, path string, within time.Duration) bool {
		t.Helper()
		write(t, c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if err := c.SetReadDeadline(time.Now().Add(within)); err != nil {
			t.Fatal(err)
		}
		if _, err := br.Peek(1); err != nil {
			return false
		}
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, body := readResponse(t, br, http.MethodGet); body != "GET "+path+" " {
			t.Fatalf("GET %s: %q", path, body)
		}
		return true
	}
	fast, fastBR := rawConn(t, px)
	if !served(fast, fastBR, "/fast", 5*time.Second) {
		t.Fatal("first connection not served")
	}
	// A folded line: the fast path hands the connection to net/http, which serves it.
	handed, handedBR := rawConn(t, px)
	write(t, handed, "GET /handed HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n")
	if _, body := readResponse(t, handedBR, http.MethodGet); body != "GET /handed " {
		t.Fatalf("handed-off request: %q", body)
	}
	third, thirdBR := rawConn(t, px)
	if served(third, thirdBR, "/third", 200*time.Millisecond) {
		t.Fatal("a third connection was served with two open")
	}
	_ = handed.Close()
	if !served(third, thirdBR, "/third", 5*time.Second) {
		t.Fatal("the third connection was not served once the handed-off one closed")
	}
	fourth, fourthBR := rawConn(t, px)
	if served(fourth, fourthBR, "/fourth", 200*time.Millisecond) {
		t.Fatal("a fourth connection was served with two open")
	}
	_ = fast.Close()
	if !served(fourth, fourthBR, "/fourth", 5*time.Second) {
		t.Fatal("the fourth connection was not served once the first closed")
	}
}
