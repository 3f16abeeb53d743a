package fastpath

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// Chunked bodies in the smuggling suite (see smuggle_test.go): each chunk line and trailer
// is read as strictly as net/http's chunked reader reads it, and passed on re-framed.

// TestSmuggle_ChunkedRequestBodies sends chunked bodies that net/http's chunked reader
// rejects, or accepts only by dropping what it does not understand: the proxy refuses the
// first (502, as net/http's forwarder does once the head is sent) and never passes on a
// malformed line.
func TestSmuggle_ChunkedRequestBodies(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		code       int    // 0: net/http and the fast path may differ (refused or repaired)
		wantBody   string // the body the backend read, when code is 200
		notSent    string // bytes that must not reach the backend
	}{
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n", 502, "", "5\nhello"},
		{"bare LF after the data", "5\r\nhello\n0\r\n\r\n", 502, "", "hello\n"},
		{"bare CR in the size line", "5\r\r\nhello\r\n0\r\n\r\n", 502, "", "5\r\r"},
		{"bare LF after the last chunk", "5\r\nhello\r\n0\n\r\n", 502, "", "0\n"},
		{"data longer than its size", "5\r\nhelloXX\r\n0\r\n\r\n", 502, "", "helloXX"},
		{"size not hex", "5\r\nhello\r\ng\r\n\r\n", 502, "", "\r\ng\r\n"},
		{"signed size", "+5\r\nhello\r\n0\r\n\r\n", 502, "", "+5"},
		{"size of 17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", 502, "", "0000005"},
		{"size of 16 digits", "000000000000000a\r\n0123456789\r\n0\r\n\r\n", 200, "0123456789", ""},
		{"control character in an extension", "5;\x01x\r\nhello\r\n0\r\n\r\n", 200, "hello", "\x01"},
		{"space before an extension", "5 ;a=b\r\nhello\r\n0\r\n\r\n", 502, "", "5 ;"},
		{"trailer without a colon", "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", 502, "", "bad trailer"},
		{"trailer with a bare CR", "5\r\nhello\r\n0\r\nX-A: 1\rX-B: 2\r\n\r\n", 502, "", "1\rX"},
		{"folded trailer", "5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n", 0, "", "\r\n 2"},
		{"trailer", "5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n", 200, "hello", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, addr := startRecorder(t, nil)
			px := smuggleProxy(t, addr)
			a, c, br := roundTrip(t, px, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+tt.body, http.MethodPost)
			switch {
			case tt.code == 0:
			case a.err != nil || a.code != tt.code:
				t.Errorf("got %v, want %d", a, tt.code)
			case tt.code == 200 && !strings.HasSuffix(a.body, " POST /a "+tt.wantBody):
				t.Errorf("got %v, want the backend to read %q", a, tt.wantBody)
			case tt.code != 200 && !a.close:
				t.Errorf("got %v without Connection: close", a)
			}
			if tt.notSent != "" && strings.Contains(rec.raw(), tt.notSent) {
				t.Errorf("%q reached the backend:%s", tt.notSent, rec.log())
			}
			if tt.code == 200 {
				checkNext(t, c, br, rec)
			}
		})
	}
}

// TestSmuggle_ChunkedResponseBodies: a backend's malformed chunked body is not passed on; a
// well-formed one that net/http reads is, re-framed.
func TestSmuggle_ChunkedResponseBodies(t *testing.T) {
	const (
		refused  = iota // the client gets a 502 or an answer cut short
		repaired        // the client gets the whole answer
		either          // net/http repairs what the fast path refuses
	)
	for _, tt := range []struct {
		name, body string
		want       int
		notSent    string // bytes that must not reach the client
	}{
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n", refused, "5\nhello"},
		{"bare LF after the data", "5\r\nhello\n0\r\n\r\n", refused, "hello\n"},
		{"data longer than its size", "5\r\nhelloXX\r\n0\r\n\r\n", refused, "helloXX"},
		{"space before an extension", "5 ;a\r\nhello\r\n0\r\n\r\n", refused, "5 ;"},
		{"trailer without a colon", "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", refused, "bad trailer"},
		{"folded trailer", "5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n", either, "\r\n 2"},
		{"control character in an extension", "5;\x01\r\nhello\r\n0\r\n\r\n", repaired, "\x01"},
		{"size of 16 digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", repaired, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startRecorder(t, scripted("/a", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+tt.body, ""))
			px := smuggleProxy(t, addr)
			c, _ := dialProxy(t, px)
			tee := &rawTee{r: c}
			br := bufio.NewReader(tee)
			write(t, c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			a := readAnswer(br, http.MethodGet)
			if tt.want == repaired && (a.err != nil || a.code != 200 || a.body != "hello") {
				t.Errorf("got %v, want 200 %q", a, "hello")
			}
			if tt.want == refused && a.err == nil && a.code == 200 {
				t.Errorf("got %v, want a 502 or an answer cut short", a)
			}
			if tt.notSent != "" && strings.Contains(tee.buf.String(), tt.notSent) {
				t.Errorf("%q reached the client: %q", tt.notSent, tee.buf.String())
			}
		})
	}
}
