package fastpath

import (
	"bufio"
	"strings"
	"testing"
)

func TestRespHead_Read(t *testing.T) {
	for _, tt := range []struct {
		name, head string
		ok         bool
		check      func(h *respHead) bool
	}{
		{"plain", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  v \r\n\r\n", true, func(h *respHead) bool {
			return h.code == 200 && h.length == 5 && !h.chunked && !h.close && string(h.reason()) == "200 OK"
		}},
		{"no reason", "HTTP/1.1 204\r\n\r\n", true, func(h *respHead) bool { return h.code == 204 && h.length == -1 }},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\n", true, func(h *respHead) bool { return h.length == 2 }},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: Chunked\r\n\r\n", true, func(h *respHead) bool {
			return h.chunked && h.length == -1
		}},
		{"equal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", true, func(h *respHead) bool { return h.length == 2 }},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\n\r\n", true, func(h *respHead) bool { return h.close }},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: x, Close\r\n\r\n", true, func(h *respHead) bool { return h.close }},
		{"equal lengths spelled differently", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\n", false, nil},
		{"different lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", false, nil},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, nil},
		{"two codings", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil},
		{"chunked on HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil},
		{"bare CR in a value", "HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\n\r\n", false, nil},
		{"CR CR LF", "HTTP/1.1 200 OK\r\nX-A: 1\r\r\n\r\n", false, nil},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: \x00\r\n\r\n", false, nil},
		{"folded line", "HTTP/1.1 200 OK\r\nX-A: 1\r\n X-B: 2\r\n\r\n", false, nil},
		{"space before the colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n", false, nil},
		{"no colon", "HTTP/1.1 200 OK\r\nX-A\r\n\r\n", false, nil},
		{"bare CR in the reason", "HTTP/1.1 200 O\rK\r\n\r\n", false, nil},
		{"code below 100", "HTTP/1.1 099 X\r\n\r\n", false, nil},
		{"code not digits", "HTTP/1.1 2x0 X\r\n\r\n", false, nil},
		{"HTTP/2", "HTTP/2.0 200 OK\r\n\r\n", false, nil},
		{"HTTP/1.x", "HTTP/1.x 200 OK\r\n\r\n", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h respHead
			got, err := h.read(bufio.NewReader(strings.NewReader(tt.head)))
			if !got || (err == nil) != tt.ok {
				t.Fatalf("got %v, err %v; want ok %v", got, err, tt.ok)
			}
			if tt.ok && !tt.check(&h) {
				t.Errorf("parsed %+v", h)
			}
		})
	}
}

// TestWriteHead_LengthOnce: the head passed on to the client carries Content-Length once,
// as plain digits, even when the backend sent it twice, with leading zeros, or listed it in
// Connection; and none for a chunked answer.
func TestWriteHead_LengthOnce(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"HTTP/1.1 200 OK\r\nContent-Length: 007\r\nX-A: 1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-A: 1\r\n"},
		{"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nConnection: content-length\r\nContent-Length: 7\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 200 OK\r\n"},
	} {
		var h respHead
		if _, err := h.read(bufio.NewReader(strings.NewReader(tt.in))); err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		var b strings.Builder
		c := &conn{bw: bufio.NewWriter(&b)}
		c.writeHead(&h, false, "")
		_ = c.bw.Flush()
		if b.String() != tt.want {
			t.Errorf("%q: wrote %q, want %q", tt.in, b.String(), tt.want)
		}
	}
}
