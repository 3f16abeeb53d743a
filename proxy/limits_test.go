package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
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
