package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/proxy/fastpath"
)

// statusClientClosed is recorded (not sent) when the client went away before the backend
// answered, so that impatient clients do not count as the revision's 5xx errors.
const statusClientClosed = 499

// Transport defaults.
const (
	dialTimeout         = 5 * time.Second
	keepAlive           = 30 * time.Second
	idleConnTimeout     = 90 * time.Second
	maxIdleConnsPerHost = 512
)

// backend is the long-lived state of one instance: its in-flight count and its forwarder.
type backend struct {
	id       string
	revision string
	addr     string
	inflight atomic.Int64
	rp       *httputil.ReverseProxy
	up       *fastpath.Upstream // the fast path's side: the keep-alive connections to the instance
}

// newBackend builds b's forwarder: an httputil.ReverseProxy per backend, so that the target
// is fixed at build time and the request path passes nothing through the context.
func (p *Proxy) newBackend(b Backend) *backend {
	be := &backend{id: b.ID, revision: b.Revision, addr: b.Addr,
		up: fastpath.NewUpstream(b.Addr, p.log.With("revision", b.Revision, "backend", b.ID))}
	be.rp = &httputil.ReverseProxy{
		Rewrite:   be.rewrite,
		Transport: p.transport,
		// Streaming: SSE and bodies of unknown length are flushed by the forwarder after
		// every write (it overrides FlushInterval for them); bodies of known length by
		// reqState.Write, except for their last write, which the server's end of response
		// sends with the headers. (FlushInterval -1 would also flush the headers alone at
		// once, from a timer goroutine: a second write(2) and a goroutine per request.)
		FlushInterval: 0,
		BufferPool:    &p.buffers,
		ErrorHandler:  p.proxyError,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return be
}

// rewrite points the outbound request at the backend. The Host header stays the client's
// (apps build links from it); X-Forwarded-For, -Host and -Proto tell where it came from.
func (b *backend) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = b.addr
	pr.SetXForwarded()
}

// reqState is the per-request state, pooled. It is also the http.ResponseWriter handed to
// the forwarder, to learn the status code, to flush bodies of known length as they come and
// to let the error handler retry; Unwrap lets http.ResponseController reach the real
// writer's Flush and Hijack. On the fast path it is the request's fastpath.Exchange, as a
// fastExchange (listener.go).
type reqState struct {
	w         http.ResponseWriter // net/http path
	in        *http.Request       // net/http path
	p         *Proxy              // fast path: the proxy that routed the request
	fr        *fastpath.Request   // fast path
	setCookie string              // fast path: a Set-Cookie value to send with the response
	rev       *revision
	be        *backend
	code      int
	left      int64 // body bytes still to come when Content-Length gives them, else -1 (0 before)
	bucket    uint32
	hasBucket bool
	preview   bool
	retried   bool
}

func (s *reqState) reset() { *s = reqState{} }

// header returns the values of the request's header key (canonical form) one by one,
// whichever path the request came by: the first at position from or after it, and the
// position to look from for the next.
func (s *reqState) header(key string, from int) (v string, next int, ok bool) {
	if s.fr != nil {
		v, at := s.fr.Header(key, from)
		return v, at + 1, at >= 0
	}
	vs := s.in.Header[key]
	if from < len(vs) {
		return vs[from], from + 1, true
	}
	return "", from, false
}

// cookie returns the value of the request's first cookie called name.
func (s *reqState) cookie(name string) (string, bool) {
	if s.fr == nil {
		return cookieValue(s.in.Header, name)
	}
	for i := 0; ; {
		line, next, ok := s.header("Cookie", i)
		if !ok {
			return "", false
		}
		if v, ok := cookieIn(line, name); ok {
			return v, true
		}
		i = next
	}
}

// addCookie adds a Set-Cookie header to the response.
func (s *reqState) addCookie(v string) {
	if s.fr != nil {
		s.setCookie = v
		return
	}
	s.w.Header().Add("Set-Cookie", v)
}

// Header returns the real writer's header map.
func (s *reqState) Header() http.Header { return s.w.Header() }

// WriteHeader notes the first final status code and passes it on.
func (s *reqState) WriteHeader(code int) {
	if s.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.code = code
		s.left = contentLength(s.w.Header())
	}
	s.w.WriteHeader(code)
}

// Write passes b on (an implicit 200 if no status was written). A body of known length is
// flushed after each write but its last, so that it streams; the last part goes out with
// the end of the response, in the same write(2) as the headers for a small body. Bodies of
// unknown length are flushed by the forwarder itself.
func (s *reqState) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
		s.left = contentLength(s.w.Header())
	}
	n, err := s.w.Write(b)
	if s.left > 0 {
		s.left -= int64(n)
		if s.left > 0 && err == nil {
			s.flush()
		}
	}
	return n, err
}

// flush sends what the real writer holds.
func (s *reqState) flush() {
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(s.w).Flush()
}

// contentLength returns the length h announces for the body, or -1.
func contentLength(h http.Header) int64 {
	vs := h["Content-Length"]
	if len(vs) != 1 {
		return -1
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// Unwrap returns the real writer, for http.ResponseController.
func (s *reqState) Unwrap() http.ResponseWriter { return s.w }

// proxyError is the forwarders' error handler: called when the backend could not be reached
// or failed before a response was written. It retries once on another ready backend when
// that is safe, else answers 502.
func (p *Proxy) proxyError(w http.ResponseWriter, _ *http.Request, err error) {
	rs, ok := w.(*reqState)
	if !ok { // not reached: every forwarder is called with a *reqState
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	in := rs.in
	if in.Context().Err() != nil {
		rs.code = statusClientClosed
		return
	}
	failed := rs.be
	if rs.code == 0 {
		req := in
		replayable := in.Body == nil || in.Body == http.NoBody || in.GetBody != nil || in.ContentLength == 0
		if in.GetBody != nil && in.Body != nil && in.Body != http.NoBody {
			body, gerr := in.GetBody()
			if gerr != nil {
				replayable = false
			} else {
				req = in.WithContext(in.Context())
				req.Body = body
			}
		}
		if nb := p.retryOn(rs, err, in.Method, replayable); nb != nil {
			nb.rp.ServeHTTP(rs, req)
			return
		}
	}
	p.log.Warn("backend request failed", "revision", failed.revision, "backend", failed.id, "err", err)
	if rs.code != 0 {
		return // a response has begun: nothing more can be said to the client
	}
	rs.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
	rs.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(rs, "slipway: bad gateway\n")
}

// retryOn decides, for a request whose backend failed with err before answering, whether
// it is sent once more: only once per request, and only when retryable says so. It then
// moves the request to another backend (reacquire) and returns it; nil means answer 502.
// Both the net/http path and the fast path use it.
func (p *Proxy) retryOn(rs *reqState, err error, method string, replayable bool) *backend {
	if rs.retried || !retryable(err, method, replayable) {
		return nil
	}
	failed := rs.be
	nb := p.reacquire(rs)
	if nb == nil {
		return nil
	}
	rs.retried = true
	p.log.Debug("retrying on another backend", "revision", rs.rev.name, "backend", failed.id, "retry", nb.id, "err", err)
	return nb
}

// retryable reports whether a failed forward may be sent again elsewhere. The body must be
// replayable (none, GetBody set, or held whole by the fast path). A dial error means
// nothing was sent, so any method is retried; any other failure before the response (reset,
// closed connection) may have reached the backend, so only idempotent methods are retried
// then, as nginx's proxy_next_upstream does.
func retryable(err error, method string, replayable bool) bool {
	if !replayable {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return idempotent(method)
}

// idempotent reports whether method may be sent twice.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// reacquire moves rs off its failed backend: another ready backend of the same revision
// first, else (on the main listener) the next revision in the weights with one, else another
// revision of the table with one. The counts move with it. It returns nil when there is no
// other backend.
func (p *Proxy) reacquire(rs *reqState) *backend {
	failed, from := rs.be, rs.rev
	for try := 1; ; try++ {
		t := p.table.Load()
		var v *revision
		var b *backend
		if cur := t.byName[from.name]; cur != nil {
			v, b = cur, cur.pick(failed)
		}
		if b == nil && !rs.preview && len(t.weights) > 0 {
			start := 0
			if v != nil && v.position >= 0 {
				start = v.position + 1
			}
			for j := range len(t.weights) {
				w := t.weights[(start+j)%len(t.weights)].rev
				if nb := w.pick(failed); nb != nil {
					v, b = w, nb
					break
				}
			}
			for _, o := range t.others {
				if b != nil {
					break
				}
				if nb := o.pick(failed); nb != nil {
					v, b = o, nb
				}
			}
		}
		if b == nil {
			return nil
		}
		b.inflight.Add(1)
		if try == acquireTries || p.table.Load() == t {
			failed.inflight.Add(-1)
			if from.metrics != nil {
				from.metrics.inflight.Dec()
			}
			if v.metrics != nil {
				v.metrics.inflight.Inc()
			}
			rs.rev, rs.be = v, b
			return b
		}
		b.inflight.Add(-1)
	}
}

// newTransport returns the transport used when Config.Transport is nil: plain HTTP/1.1 to
// local backends, many idle connections kept per backend, no proxy from the environment and
// no transparent compression (the client's Accept-Encoding goes through untouched).
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}
