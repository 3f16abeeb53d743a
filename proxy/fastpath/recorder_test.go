package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a backend for the smuggling tests: it keeps exactly the bytes it receives on
// each connection, reads them as requests with net/http's own reader (http.ReadRequest and
// the body's framing), and logs every request it read and every error. So a test can tell
// what a backend behind the proxy would have seen: how many requests, on which
// connection, with which head and body.
//
// It answers each request with what reply returns: raw response bytes written at once, and
// optionally more written a moment later (a backend that sends bytes after its response).
// The default answer is 200 with "<conn>/<seq> <method> <target> <body>" as its body.
type recorder struct {
	reply func(r *recorded) (now, later string)

	mu    sync.Mutex
	conns []*recConn
	later chan struct{} // receives after each "later" write
}

// recConn is one connection the recorder accepted.
type recConn struct {
	raw  bytes.Buffer
	reqs []*recorded
	err  error // what ended the connection, if not a clean EOF
}

// recorded is one request as the recorder's net/http reader saw it.
type recorded struct {
	conn, seq int
	method    string
	target    string
	host      string
	header    http.Header
	body      string
	trailer   http.Header
	bodyErr   error
}

// laterDelay is how long the recorder waits before writing a reply's later bytes.
const laterDelay = 20 * time.Millisecond

// startRecorder starts a recorder on 127.0.0.1:0 and returns it with its address; reply nil
// gives the default answer.
func startRecorder(tb testing.TB, reply func(r *recorded) (now, later string)) (*recorder, string) {
	tb.Helper()
	rec := &recorder{reply: reply, later: make(chan struct{}, 16)}
	if rec.reply == nil {
		rec.reply = func(r *recorded) (string, string) {
			if r.method == http.MethodHead {
				return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(r.String())), ""
			}
			return okReply(r.String()), ""
		}
	}
	return rec, rawBackend(tb, rec.serve)
}

// okReply returns a 200 response with body b.
func okReply(b string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
}

// String is the default answer's body.
func (r *recorded) String() string {
	return fmt.Sprintf("%d/%d %s %s %s", r.conn, r.seq, r.method, r.target, r.body)
}

// teeConn records what is read from a connection.
type teeConn struct {
	rec *recorder
	rc  *recConn
	nc  net.Conn
}

func (t *teeConn) Read(b []byte) (int, error) {
	n, err := t.nc.Read(b)
	t.rec.mu.Lock()
	t.rc.raw.Write(b[:n])
	t.rec.mu.Unlock()
	return n, err
}

func (rec *recorder) serve(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	rec.mu.Lock()
	rc := &recConn{}
	rec.conns = append(rec.conns, rc)
	id := len(rec.conns) - 1
	rec.mu.Unlock()
	fail := func(err error) {
		rec.mu.Lock()
		rc.err = err
		rec.mu.Unlock()
	}
	br := bufio.NewReader(&teeConn{rec: rec, rc: rc, nc: nc})
	for seq := 0; ; seq++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fail(err)
			}
			return
		}
		r := &recorded{conn: id, seq: seq, method: req.Method, target: req.RequestURI, host: req.Host, header: req.Header}
		body, err := io.ReadAll(req.Body)
		r.body, r.bodyErr, r.trailer = string(body), err, req.Trailer
		rec.mu.Lock()
		rc.reqs = append(rc.reqs, r)
		rec.mu.Unlock()
		if err != nil {
			fail(fmt.Errorf("body: %w", err))
			return
		}
		now, later := rec.reply(r)
		if _, err := io.WriteString(nc, now); err != nil {
			return
		}
		if later != "" {
			time.Sleep(laterDelay) // late on purpose: bytes the proxy sees after the answer
			if _, err := io.WriteString(nc, later); err != nil {
				return
			}
			rec.later <- struct{}{}
		}
		if req.Close {
			return
		}
	}
}

// requests returns every request the recorder read, connection by connection.
func (rec *recorder) requests() []*recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var all []*recorded
	for _, c := range rec.conns {
		all = append(all, c.reqs...)
	}
	return all
}

// raw returns every byte the recorder received, connection by connection.
func (rec *recorder) raw() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var b strings.Builder
	for _, c := range rec.conns {
		b.Write(c.raw.Bytes())
	}
	return b.String()
}

// errs returns the errors that ended the recorder's connections.
func (rec *recorder) errs() []error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var errs []error
	for _, c := range rec.conns {
		if c.err != nil {
			errs = append(errs, c.err)
		}
	}
	return errs
}

// log describes everything the recorder saw, for failure messages.
func (rec *recorder) log() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var b strings.Builder
	for i, c := range rec.conns {
		fmt.Fprintf(&b, "\n  conn %d received %q", i, c.raw.String())
		for _, r := range c.reqs {
			fmt.Fprintf(&b, "\n    request %s host %q header %v trailer %v body error %v", r, r.host, r.header, r.trailer, r.bodyErr)
		}
		if c.err != nil {
			fmt.Fprintf(&b, "\n    ended by %v", c.err)
		}
	}
	return b.String()
}
