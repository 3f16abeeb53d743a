package fastpath

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The smuggling suite: requests and responses crafted to make the proxy and a backend (or
// the proxy and a client) disagree on where a message ends. Each test runs in both passes of
// the suite (the fast path, then net/http as its reference) and checks, through a recorder
// backend that logs exactly what it receives (recorder_test.go), that a backend sees the
// requests the client sent, whole and framed as the client framed them, and that a client
// sees only the answers to its own requests. Request heads are here; response heads and
// backend desync in smuggle_response_test.go, chunked bodies in smuggle_chunked_test.go,
// sizes and limits in limits_test.go.

// dialProxy dials addr; reads and writes fail after 3 s, so that a test of a message left
// unframed fails rather than hangs.
func dialProxy(tb testing.TB, addr string) (net.Conn, *bufio.Reader) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// answer is one response a client read: its status, body, and whether it said it closes.
type answer struct {
	code  int
	body  string
	close bool
	err   error // the response could not be read whole
}

func (a answer) String() string {
	if a.err != nil {
		return fmt.Sprintf("error %v (code %d, body %q)", a.err, a.code, a.body)
	}
	return fmt.Sprintf("%d %q close=%v", a.code, a.body, a.close)
}

// readAnswer reads one final response (skipping interim ones) and its body.
func readAnswer(br *bufio.Reader, method string) answer {
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return answer{err: err}
		}
		if res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		b, err := io.ReadAll(res.Body)
		return answer{code: res.StatusCode, body: string(b), close: res.Close, err: err}
	}
}

// roundTrip writes raw on a new connection to addr and reads one answer.
func roundTrip(tb testing.TB, addr, raw, method string) (answer, net.Conn, *bufio.Reader) {
	tb.Helper()
	c, br := dialProxy(tb, addr)
	write(tb, c, raw)
	return readAnswer(br, method), c, br
}

// checkNext sends a GET on c and checks that its answer is the recorder's answer to it:
// nothing of an earlier exchange bled into the connection.
func checkNext(tb testing.TB, c net.Conn, br *bufio.Reader, rec *recorder) {
	tb.Helper()
	write(tb, c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if a := readAnswer(br, http.MethodGet); a.err != nil || a.code != 200 || !strings.HasSuffix(a.body, " GET /next ") {
		tb.Errorf("the next request on the connection got %v; the backend saw:%s", a, rec.log())
	}
}

func TestSmuggle_ConnectionListsFramingHeader(t *testing.T) {
	victim := "GET /victim HTTP/1.1\r\nHost: x\r\nCookie: session=secret\r\n\r\n"
	capture := fmt.Sprintf("POST /capture HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(victim))
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(capture), capture)
	length := func(conn string) string {
		return fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nConnection: %s\r\nContent-Length: %d\r\n\r\n%s", conn, len(capture), capture)
	}
	for _, tt := range []struct {
		name, req, wantMethod, wantBody string
	}{
		{"Content-Length", length("Content-Length"), "POST", capture},
		{"Content-Length among other tokens", length("keep-alive, content-length, x-a"), "POST", capture},
		{"Content-Length in a second Connection line", strings.Replace(length("keep-alive"), "\r\n\r\n",
			"\r\nConnection: Content-Length\r\n\r\n", 1), "POST", capture},
		{"Transfer-Encoding", "POST /a HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, "POST", capture},
		{"Host", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n", "GET", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, nil)
			px := smuggleProxy(t, addr)
			a, c, br := roundTrip(t, px, tt.req, tt.wantMethod)
			if a.err != nil || a.code != 200 || !strings.HasSuffix(a.body, " "+tt.wantMethod+" /a "+tt.wantBody) {
				t.Errorf("attacker's request got %v", a)
			}
			// Another user's request, on another connection, after the first was answered.
			v := readAnswerOf(t, px, victim)
			if v.err != nil || v.code != 200 || !strings.HasSuffix(v.body, " GET /victim ") {
				t.Errorf("victim's request got %v", v)
			}
			reqs := rec.requests()
			if len(reqs) != 2 || reqs[0].target != "/a" || reqs[0].body != tt.wantBody || reqs[1].target != "/victim" ||
				len(rec.errs()) > 0 {
				t.Errorf("the backend did not see exactly the two requests sent:%s", rec.log())
			}
			for _, r := range reqs {
				if r.host != "x" {
					t.Errorf("request %s reached the backend with Host %q, want x", r, r.host)
				}
			}
			checkNext(t, c, br, rec)
		})
	}
}

// readAnswerOf sends raw on a new connection and reads its answer.
func readAnswerOf(tb testing.TB, addr, raw string) answer {
	tb.Helper()
	method, _, _ := strings.Cut(raw, " ")
	a, _, _ := roundTrip(tb, addr, raw, method)
	return a
}

// TestSmuggle_FramingConflicts sends requests whose framing is ambiguous or malformed: the
// proxy must refuse them as net/http does, or frame them for the backend exactly as it read
// them, so that nothing of the body becomes a request.
func TestSmuggle_FramingConflicts(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	chunk := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)
	for _, tt := range []struct {
		name     string
		req      string
		code     int    // the client's answer
		wantBody string // the body the backend read ("-": it read no request)
	}{
		{"Content-Length then Transfer-Encoding", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk, 200, smuggled},
		{"Transfer-Encoding then Content-Length", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk, 200, smuggled},
		{"two different lengths", fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled), 400, "-"},
		{"two equal lengths", fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: %[1]d\r\n\r\n%s", len(smuggled), smuggled), 200, smuggled},
		{"length list", fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d, %[1]d\r\n\r\n%s", len(smuggled), smuggled), 400, "-"},
		{"signed length", fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +%d\r\n\r\n%s", len(smuggled), smuggled), 400, "-"},
		{"gzip coding", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + chunk, 501, "-"},
		{"chunked, identity", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n" + chunk, 501, "-"},
		{"identity", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" + chunk, 501, "-"},
		{"chunked spelled with a Kelvin sign", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\u212aed\r\n\r\n" + chunk, 501, "-"},
		{"close spelled with a long s", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: clo\u017fe\r\n\r\n", 200, ""},
		{"chunked twice", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk, 501, "-"},
		{"Transfer-Encoding with a space before the colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n" + chunk, 400, "-"},
		{"chunked on HTTP/1.0 is ignored", "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk, 200, ""},
		{"Transfer-Encoding folded into another field", "POST /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", 200, ""},
		{"Content-Length folded", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n 0\r\n\r\n" + smuggled, 400, "-"},
		{"line folded before the first field", "POST /a HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n" + chunk, 400, "-"},
		{"bare LF line ends", "POST /a HTTP/1.1\nHost: x\nContent-Length: 4\n\nbody", 200, "body"},
		{"bare CR inside a value", "POST /a HTTP/1.1\r\nHost: x\r\nX-A: 1\rTransfer-Encoding: chunked\r\n\r\n" + chunk, 400, "-"},
		{"bare CR ending a line", "POST /a HTTP/1.1\r\nHost: x\rTransfer-Encoding: chunked\r\n\r\n" + chunk, 400, "-"},
		{"NUL in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\x00\r\n\r\n", 400, "-"},
		{"two hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "-"},
		{"no host", "GET /a HTTP/1.1\r\n\r\n", 400, "-"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, nil)
			px := smuggleProxy(t, addr)
			method, _, _ := strings.Cut(tt.req, " ")
			a, c, br := roundTrip(t, px, tt.req, method)
			if a.err != nil || a.code != tt.code {
				t.Errorf("got %v, want %d", a, tt.code)
			}
			reqs := rec.requests()
			switch {
			case tt.wantBody == "-" && len(reqs) > 0:
				t.Errorf("a request reached the backend:%s", rec.log())
			case tt.wantBody != "-" && (len(reqs) != 1 || reqs[0].body != tt.wantBody || len(rec.errs()) > 0):
				t.Errorf("the backend did not see exactly one request with body %q:%s", tt.wantBody, rec.log())
			}
			if strings.Contains(rec.raw(), "/smuggled") && tt.wantBody != smuggled {
				t.Errorf("the smuggled request reached the backend:%s", rec.log())
			}
			if a.err == nil && !a.close {
				checkNext(t, c, br, rec)
			}
		})
	}
}

// TestSmuggle_Pipelining: requests written together, bodies that look like requests
// included, are each answered in order and reach the backend whole and separate.
func TestSmuggle_Pipelining(t *testing.T) {
	rec, addr := startRecorder(t, nil)
	px := smuggleProxy(t, addr)
	const inner = "GET /inner HTTP/1.1\r\nHost: x\r\n\r\n"
	reqs := []struct{ raw, method, target, body string }{
		{fmt.Sprintf("POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(inner), inner), "POST", "/1", inner},
		{fmt.Sprintf("PUT /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(inner), inner), "PUT", "/2", inner},
		{"HEAD /3 HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", "/3", ""},
		{"GET /4 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/4", ""},
	}
	var all strings.Builder
	for _, r := range reqs {
		all.WriteString(r.raw)
	}
	c, br := dialProxy(t, px)
	write(t, c, all.String())
	for _, r := range reqs {
		a := readAnswer(br, r.method)
		want := fmt.Sprintf(" %s %s %s", r.method, r.target, r.body)
		if r.method == http.MethodHead {
			want = ""
		}
		if a.err != nil || a.code != 200 || !strings.HasSuffix(a.body, want) {
			t.Fatalf("%s %s: got %v, want a body ending %q", r.method, r.target, a, want)
		}
	}
	got := rec.requests()
	if len(got) != len(reqs) {
		t.Fatalf("the backend saw %d requests, want %d:%s", len(got), len(reqs), rec.log())
	}
	for i, r := range reqs {
		if got[i].target != r.target || got[i].body != r.body {
			t.Errorf("request %d reached the backend as %s:%s", i, got[i], rec.log())
		}
	}
}

// TestSmuggle_ExpectContinue: a request that waits for 100 Continue gets it, then its
// answer; the backend sees one request with the body.
func TestSmuggle_ExpectContinue(t *testing.T) {
	rec, addr := startRecorder(t, nil)
	px := smuggleProxy(t, addr)
	c, br := dialProxy(t, px)
	write(t, c, "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v %v", res, err)
	}
	write(t, c, "body")
	if a := readAnswer(br, http.MethodPost); a.err != nil || !strings.HasSuffix(a.body, " POST /a body") {
		t.Errorf("got %v", a)
	}
	if reqs := rec.requests(); len(reqs) != 1 || reqs[0].body != "body" {
		t.Errorf("the backend did not see one request with its body:%s", rec.log())
	}
	checkNext(t, c, br, rec)
}

// TestSmuggle_FramingSpelledOneWay: the framing fields reach the backend in the one
// spelling every server reads alike, whatever the client's spelling (a backend that took
// "CHUNKED" for no coding would read the body as a request).
func TestSmuggle_FramingSpelledOneWay(t *testing.T) {
	for _, tt := range []struct{ name, req, want string }{
		{"chunked in capitals", "POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: CHUNKED\r\n\r\n4\r\nbody\r\n0\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n"},
		{"length with leading zeros", "POST /a HTTP/1.1\r\nHost: x\r\ncontent-length: 0004\r\n\r\nbody", "\r\nContent-Length: 4\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, nil)
			px := smuggleProxy(t, addr)
			if a := readAnswerOf(t, px, tt.req); a.err != nil || !strings.HasSuffix(a.body, " POST /a body") {
				t.Errorf("got %v", a)
			}
			if raw := rec.raw(); !strings.Contains(raw, tt.want) {
				t.Errorf("the backend received %q, want %q in it", raw, tt.want)
			}
		})
	}
}
