package fastpath

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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

// TestSmuggle_BackendDesync: a backend sends bytes after the end of its answer (a body on
// HEAD, 204 or 304, bytes past Content-Length, a second answer), with the answer or a
// moment later. None of it may reach a client: the backend connection is not used again.
func TestSmuggle_BackendDesync(t *testing.T) {
	poison := okReply("poison")
	for _, tt := range []struct {
		name, method, now, later string
	}{
		{"HEAD, body sent late", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", poison},
		{"HEAD, body with the head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + poison, ""},
		{"204 with a body sent late", "GET", "HTTP/1.1 204 No Content\r\n\r\n", poison},
		{"204 with a body", "GET", "HTTP/1.1 204 No Content\r\n\r\n" + poison, ""},
		{"304 with a body sent late", "GET", "HTTP/1.1 304 Not Modified\r\n\r\n", poison},
		{"bytes past Content-Length sent late", "GET", okReply("first"), poison},
		{"bytes past Content-Length", "GET", okReply("first") + poison, ""},
		{"a second answer to a chunked one, sent late", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n", poison},
		{"bare bytes sent late", "GET", okReply("first"), "junk"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, scripted("/first", tt.now, tt.later))
			px := smuggleProxy(t, addr)
			c, br := dialProxy(t, px)
			write(t, c, tt.method+" /first HTTP/1.1\r\nHost: x\r\n\r\n")
			if a := readAnswer(br, tt.method); a.err != nil || strings.Contains(a.body, "poison") {
				t.Errorf("first answer: %v", a)
			}
			if tt.later != "" {
				select {
				case <-rec.later:
				case <-time.After(3 * time.Second):
					t.Fatal("the backend did not send its late bytes")
				}
				// Widens the window on purpose: the late bytes lie in the proxy's socket
				// buffer (nothing the test can watch) before the next request.
				time.Sleep(10 * time.Millisecond)
			}
			// Other users, then the same one, ask next.
			for i := range 3 {
				a := readAnswerOf(t, px, fmt.Sprintf("GET /other%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
				if a.err != nil || a.code != 200 || !strings.HasSuffix(a.body, fmt.Sprintf(" GET /other%d ", i)) {
					t.Errorf("another user's request got %v; the backend saw:%s", a, rec.log())
				}
			}
			checkNext(t, c, br, rec)
		})
	}
}

// TestSmuggle_ResponseHeads: a backend's head with bytes a client may read differently (a
// bare CR, a NUL, a folded line, a name that is not a token) never reaches a client as it
// is: it is refused with 502 or repaired as net/http repairs it.
func TestSmuggle_ResponseHeads(t *testing.T) {
	for _, tt := range []struct {
		name, head string
		code       int // 0: net/http repairs what the fast path refuses
	}{
		{"bare CR in a value", "HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 0\r\nContent-Length: 2\r\n\r\nok", 502},
		{"bare CR ending a line", "HTTP/1.1 200 OK\r\nX-A: 1\r\rContent-Length: 2\r\n\r\nok", 502},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: 1\x00\r\nContent-Length: 2\r\n\r\nok", 502},
		{"space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 9\r\nContent-Length: 2\r\n\r\nok", 0},
		{"folded line", "HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 9\r\nContent-Length: 2\r\n\r\nok", 0},
		{"bare CR in the reason", "HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok", 0},
		{"NUL in the reason", "HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok", 0},
		{"two different lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nok", 502},
		{"gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", 502},
		{"chunked, identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", 502},
		{"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200},
		{"length with leading zeros", "HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nok", 200},
		{"two lengths, one with leading zeros", "HTTP/1.1 200 OK\r\nContent-Length: 002\r\ncontent-length: 2\r\n\r\nok", 502},
		{"two equal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length:  2 \r\n\r\nok", 200},
		{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, scripted("/a", tt.head, ""))
			px := smuggleProxy(t, addr)
			c, _ := dialProxy(t, px)
			tee := &rawTee{r: c}
			br := bufio.NewReader(tee)
			write(t, c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			a := readAnswer(br, http.MethodGet)
			switch {
			case a.err != nil:
				t.Errorf("got %v", a)
			case tt.code != 0 && a.code != tt.code:
				t.Errorf("got %v, want %d", a, tt.code)
			case a.code == 200 && a.body != "ok":
				t.Errorf("got %v, want 200 %q", a, "ok")
			}
			head := headOf(tee.buf.Bytes())
			if bareCRorNUL(head) || bytes.Contains(head, []byte("\n ")) || bytes.Contains(head, []byte(" :")) ||
				bytes.Count(bytes.ToLower(head), []byte("\ncontent-length:")) > 1 {
				t.Errorf("the client read the head %q", head)
			}
			if a.err == nil && !a.close {
				write(t, c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
				if a := readAnswer(br, http.MethodGet); a.err != nil || !strings.HasSuffix(a.body, " GET /next ") {
					t.Errorf("the next request got %v; the backend saw:%s", a, rec.log())
				}
			}
		})
	}
}

// TestSmuggle_InterimResponses: 1xx answers before the final one reach an HTTP/1.1 client
// in order, and leave the connection in step; a 101 nobody asked for is refused.
func TestSmuggle_InterimResponses(t *testing.T) {
	for _, tt := range []struct {
		name, now string
		interim   []int
		code      int
	}{
		{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + okReply("ok"), []int{103}, 200},
		{"two interim answers", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b.css>\r\n\r\n" + okReply("ok"), []int{103, 103}, 200},
		{"100 Continue nobody asked for", "HTTP/1.1 100 Continue\r\n\r\n" + okReply("ok"), []int{100}, 200},
		{"101 nobody asked for", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nok", nil, 502},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, scripted("/a", tt.now, ""))
			px := smuggleProxy(t, addr)
			c, br := dialProxy(t, px)
			write(t, c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			var interim []int
			for {
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("after interim answers %v: %v", interim, err)
				}
				if res.StatusCode >= 200 {
					b, err := io.ReadAll(res.Body)
					if err != nil || res.StatusCode != tt.code || (tt.code == 200 && string(b) != "ok") {
						t.Errorf("final answer %d %q %v, want %d", res.StatusCode, b, err, tt.code)
					}
					if res.Close {
						return
					}
					break
				}
				interim = append(interim, res.StatusCode)
			}
			if fmt.Sprint(interim) != fmt.Sprint(tt.interim) {
				t.Errorf("interim answers %v, want %v", interim, tt.interim)
			}
			checkNext(t, c, br, rec)
		})
	}
}

// bareCRorNUL reports whether b holds a NUL or a CR not followed by LF.
func bareCRorNUL(b []byte) bool {
	for i, c := range b {
		if c == 0 || (c == '\r' && (i+1 == len(b) || b[i+1] != '\n')) {
			return true
		}
	}
	return false
}

// headOf returns the head at the start of raw (up to the empty line), or all of raw.
func headOf(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+4]
	}
	return raw
}
