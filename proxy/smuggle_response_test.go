package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The response side of the smuggling suite (see smuggle_test.go): backends that frame
// their answers ambiguously, send more than one answer, or put bytes in a head that a
// client would read differently.

// scripted returns a recorder reply that answers target with (now, later) and every other
// request as usual.
func scripted(target, now, later string) func(r *recorded) (string, string) {
	return func(r *recorded) (string, string) {
		if r.target == target {
			return now, later
		}
		return okReply(r.String()), ""
	}
}

// rawTee keeps what a client reads.
type rawTee struct {
	r   io.Reader
	buf bytes.Buffer
}

func (t *rawTee) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.buf.Write(b[:n])
	return n, err
}

func TestSmuggle_ResponseConnectionListsFramingHeader(t *testing.T) {
	for _, tt := range []struct{ name, now string }{
		{"Content-Length", "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"},
		{"Content-Length among other tokens", "HTTP/1.1 200 OK\r\nConnection: keep-alive, content-length\r\nContent-Length: 5\r\n\r\nhello"},
		{"Transfer-Encoding", "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, scripted("/a", tt.now, ""))
			px := smuggleProxy(t, addr)
			c, br := dialProxy(t, px)
			// Both requests at once: an answer left unframed would swallow the second.
			write(t, c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
			if a := readAnswer(br, http.MethodGet); a.err != nil || a.code != 200 || a.body != "hello" {
				t.Errorf("first answer: %v, want 200 %q", a, "hello")
			}
			if a := readAnswer(br, http.MethodGet); a.err != nil || !strings.HasSuffix(a.body, " GET /b ") {
				t.Errorf("second answer: %v; the backend saw:%s", a, rec.log())
			}
		})
	}
}
