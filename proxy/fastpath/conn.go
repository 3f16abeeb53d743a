package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Initial and largest read buffer of a client connection (a head up to maxHeadBytes, then
// a body up to maxReplayBody).
const (
	connBufSize = 4 << 10
	maxConnBuf  = maxHeadBytes + maxReplayBody + 1024
)

// conn is one client connection served by the fast path, in one goroutine: it reads a
// request head, forwards the request to a backend over a pooled connection, copies the
// response back, and loops (keep-alive) until a side closes or the request is one for
// net/http, to which it then hands the connection.
type conn struct {
	s        *server
	nc       net.Conn
	slot     *connSlot // given back when the connection closes
	buf      []byte    // bytes read from the client; buf[r:w] are not consumed yet
	r, w     int
	bw       *bufio.Writer // to the client, while a request is served
	ip       string        // the client's IP, for X-Forwarded-For
	req      Request
	rh       respHead
	x        backendTrip // the backend side of the current request
	code     int         // the status of the current request's answer, for Done
	header   string      // the Router's header lines for the current request's answer
	now      time.Time   // when the current request started, or the last one ended
	out      []byte      // the request head sent to a backend
	consumed bool        // body bytes of the current request were taken from the client
	deadline time.Time   // the read deadline set on nc (zero for none)
	linger   bool        // closing with request body bytes maybe unread: lingerClose
	handed   bool        // the connection went to net/http: it is not closed here

	// The RawConn read loop (conn_raw.go).
	rc      syscall.RawConn // nil: the ordinary loop only; set before serve starts
	rw      rawWriter       // with rc: what a served request's answer is flushed into
	stepf   func(uintptr) bool
	exit    int   // why loop returned
	exitErr error // with loopWoken: the read's error
	waiting bool  // step readied a wait for the next request
	readIn  bool  // step has read since the RawConn read began
	full    bool  // step's last read filled the buffer: read again before waiting
	inLoop  bool  // inside the RawConn read: the client must not be read through nc
	served  bool  // a response went out: waiting for the next request is idling

	// For shutdown (see await).
	accepted time.Time    // when the connection was accepted
	state    atomic.Int32 // connBusy, connFresh, connIdle or connWoken
}

// lingerTime bounds lingerClose.
const lingerTime = 500 * time.Millisecond

// lingerClose half-closes the connection and reads what the client still sends for a
// moment, so that a client still writing a body it was answered for reads the answer
// rather than a reset (net/http does the same).
func (c *conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if c.nc.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	buf := c.s.buffers.Get()
	defer c.s.buffers.Put(buf)
	for {
		if _, err := c.nc.Read(buf); err != nil {
			return
		}
	}
}

// setDeadline sets nc's read deadline, remembering it.
func (c *conn) setDeadline(t time.Time) error {
	c.deadline = t
	return c.nc.SetReadDeadline(t)
}

func (c *conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.s.log.Error("fast path panicked; connection closed", "panic", v)
		}
		if !c.handed {
			if c.linger {
				c.lingerClose()
			}
			_ = c.nc.Close()
			c.slot.release()
		}
		c.s.untrack(c)
	}()
	if host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String()); err == nil {
		c.ip = host
	}
	c.buf = make([]byte, connBufSize)
	for {
		if c.rc != nil && !c.loop() {
			return
		}
		// The ordinary loop, for one request (or for every request without a RawConn).
		if c.r == c.w {
			c.rewind()
		}
		if err := c.idleDeadline(); err != nil {
			return
		}
		if c.r == c.w && !c.await(c.served) {
			return
		}
		n, err := c.readHead()
		if err != nil {
			if errors.Is(err, errHeadTooLarge) {
				c.headTooLarge()
			}
			return
		}
		if !parseRequest(string(c.buf[c.r:c.r+n]), &c.req) {
			c.handed = c.handOff("")
			return
		}
		c.r += n
		switch c.serveRequest() {
		case closeConn:
			return
		case handOffConn:
			c.handed = c.handOff(c.req.head)
			return
		}
		c.served = true
	}
}

var errHeadTooLarge = errors.New("request head too large")

// headTooLarge answers a request whose head is over maxHeadBytes as net/http does, and
// has the connection close by lingerClose (the client may still be sending).
func (c *conn) headTooLarge() {
	const msg = "431 Request Header Fields Too Large"
	_, _ = io.WriteString(c.nc, "HTTP/1.1 "+msg+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+msg)
	c.linger = true
}

// readHead reads until buf[r:] starts with a whole request head and returns its length,
// by headDeadline.
func (c *conn) readHead() (int, error) {
	scan, timed := 0, false
	for {
		if c.w > c.r {
			if n := headEnd(c.buf[c.r:c.w], scan); n > maxHeadBytes {
				return 0, errHeadTooLarge
			} else if n >= 0 {
				return n, nil
			}
			scan = c.w - c.r
			if scan >= maxHeadBytes {
				return 0, errHeadTooLarge
			}
			if !timed {
				timed = true
				if err := c.setDeadline(c.headDeadline()); err != nil {
					return 0, err
				}
			}
		}
		if err := c.fillMore(); err != nil {
			return 0, err
		}
	}
}

// fillMore reads what the client sent next into buf (at least one byte, or an error),
// compacting or growing buf as needed.
func (c *conn) fillMore() error {
	if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else {
			nb := make([]byte, min(2*len(c.buf), maxConnBuf))
			c.w = copy(nb, c.buf[c.r:c.w])
			c.r, c.buf = 0, nb
		}
	}
	if c.w == len(c.buf) {
		return errLineTooLong
	}
	if c.inLoop {
		return errInLoop
	}
	for {
		n, err := c.nc.Read(c.buf[c.w:])
		c.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fill makes sure buf[r:] holds at least n bytes.
func (c *conn) fill(n int) error {
	for c.w-c.r < n {
		if len(c.buf)-c.r < n {
			nb := make([]byte, max(n, connBufSize))
			c.w = copy(nb, c.buf[c.r:c.w])
			c.r, c.buf = 0, nb
		}
		if err := c.fillMore(); err != nil {
			return err
		}
	}
	return nil
}

// Read, ReadSlice, Buffered and bufferedLine make the client connection a source for
// request bodies.
func (c *conn) Read(b []byte) (int, error) {
	if c.r < c.w {
		n := copy(b, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	return c.nc.Read(b)
}

func (c *conn) ReadSlice(delim byte) ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.r:c.w], delim); i >= 0 {
			line := c.buf[c.r : c.r+i+1]
			c.r += i + 1
			return line, nil
		}
		if c.w-c.r >= maxLineBytes {
			return nil, errLineTooLong
		}
		if err := c.fillMore(); err != nil {
			return nil, err
		}
	}
}

func (c *conn) Buffered() int { return c.w - c.r }

func (c *conn) bufferedLine() bool { return bytes.IndexByte(c.buf[c.r:c.w], '\n') >= 0 }

// handOff gives the connection to the http.Server, with head (a request head read already,
// or "") and then the bytes not consumed yet. It reports false when that server has shut
// down (the connection is closed then).
func (c *conn) handOff(head string) bool {
	pending := make([]byte, 0, len(head)+c.w-c.r)
	pending = append(append(pending, head...), c.buf[c.r:c.w]...)
	_ = c.setDeadline(time.Time{})
	return c.s.handOver(&replayConn{Conn: c.nc, pending: pending, slot: c.slot})
}

// What serveRequest leaves the connection to do.
const (
	nextRequest = iota // serve the next request
	closeConn          // close the connection
	handOffConn        // hand the connection to net/http, the request just read first
)

// serveRequest serves the request whose head was just read, where the Router sends it; it
// returns what the connection does next.
func (c *conn) serveRequest() int {
	start := time.Now()
	c.now = start
	r := &c.req
	c.consumed = false
	var body []byte
	if r.hasBody() {
		if err := c.setDeadline(time.Time{}); err != nil {
			return closeConn
		}
		if !r.chunked && r.length <= maxReplayBody {
			n := int(r.length)
			if err := c.fill(n); err != nil {
				return closeConn
			}
			body = c.buf[c.r : c.r+n]
		}
	}
	x := c.s.router.Route(r)
	if x == nil {
		return handOffConn
	}
	if c.rc != nil {
		c.bw = c.s.getWriter(&c.rw)
	} else {
		c.bw = c.s.getWriter(c.nc)
	}
	defer func() {
		c.s.putWriter(c.bw)
		c.bw = nil
		if cap(c.out) > 64<<10 {
			c.out = nil
		}
	}()
	c.code, c.header = 0, x.ResponseHeader()
	u := x.Upstream()
	if u == nil {
		keep := c.replyKeep(body)
		c.linger = !keep && r.hasBody()
		c.reply(r, http.StatusServiceUnavailable, "Service Unavailable", x.Unavailable(), keep, "Retry-After: 1\r\n")
		x.Done(http.StatusServiceUnavailable, start, time.Now())
		c.r += len(body)
		return next(keep && c.bw.Flush() == nil)
	}
	finished := false
	defer func() {
		if !finished { // a panic: still end the exchange
			x.Done(c.code, start, time.Now())
		}
	}()
	keep := c.forward(x, u, body)
	c.x.release()
	c.r += len(body)
	c.linger = !keep && r.hasBody() && body == nil
	// As a handler on net/http returns before the server flushes its answer, the exchange
	// ends before the answer's last bytes are flushed.
	finished = true
	end := time.Now()
	x.Done(c.code, start, end)
	c.now = end
	return next(c.bw.Flush() == nil && keep)
}

// next returns nextRequest when keep holds, else closeConn.
func next(keep bool) int {
	if keep {
		return nextRequest
	}
	return closeConn
}

// replyKeep reports whether the connection may stay open after an answer the fast path
// makes itself: only when the request body, if any, is consumed with it.
func (c *conn) replyKeep(body []byte) bool {
	return !c.req.close && (!c.req.hasBody() || body != nil) && !c.s.closing.Load()
}

// reply writes a response of the fast path's own (503, 502) into bw: extra, then the
// Router's header lines, among its header.
func (c *conn) reply(r *Request, code int, status string, body []byte, keep bool, extra string) {
	bw := c.bw
	_, _ = bw.WriteString("HTTP/1.1 ")
	_, _ = bw.WriteString(strconv.Itoa(code))
	_, _ = bw.WriteString(" ")
	_, _ = bw.WriteString(status)
	_, _ = bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\n")
	_, _ = bw.WriteString(extra)
	_, _ = bw.WriteString(c.header)
	_, _ = bw.WriteString("Content-Length: ")
	_, _ = bw.WriteString(strconv.Itoa(len(body)))
	_, _ = bw.WriteString("\r\n")
	c.writeConnection(r, keep)
	_, _ = bw.WriteString("\r\n")
	if r.method != http.MethodHead {
		_, _ = bw.Write(body)
	}
}

// writeConnection writes the Connection header the response needs, if any.
func (c *conn) writeConnection(r *Request, keep bool) {
	switch {
	case !keep:
		_, _ = c.bw.WriteString("Connection: close\r\n")
	case r.proto == 10:
		_, _ = c.bw.WriteString("Connection: keep-alive\r\n")
	}
}

var badGatewayBody = []byte("slipway: bad gateway\n")

// statusClientClosed is the status Done is given (it is not sent) when the client went
// away before the backend answered: nginx's 499.
const statusClientClosed = 499

// idempotent reports whether method may be sent twice.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// badGateway answers 502 after backend u failed and no retry was possible.
func (c *conn) badGateway(u *Upstream, body []byte, err error) bool {
	u.log.Warn("backend request failed", "err", err)
	c.code = http.StatusBadGateway
	keep := c.replyKeep(body) && !c.consumed
	c.reply(&c.req, http.StatusBadGateway, "Bad Gateway", badGatewayBody, keep, "")
	return keep
}

// forward sends the request to backend u and copies the response back; when the backend
// fails before it answers, it asks the Exchange for another (Retry). It reports whether
// the client connection stays open.
func (c *conn) forward(x Exchange, u *Upstream, body []byte) bool {
	r := &c.req
	// As with net/http's forwarder (a body without GetBody), only a body the fast path
	// holds whole can be sent again.
	replayable := !r.hasBody() || body != nil
	fresh := false // the last try was on a reused connection that failed: dial a new one
	for {
		var (
			nc     net.Conn
			reused bool
			err    error
		)
		if fresh {
			nc, err = u.dial()
		} else {
			nc, reused, err = u.get(c.now)
		}
		fresh = false
		if err != nil { // nothing was sent
			if next := x.Retry(err, replayable); next != nil {
				u = next
				continue
			}
			return c.badGateway(u, body, err)
		}
		c.x.reset(nc)
		br := c.s.getReader(&c.x)
		nothingSent, err := c.send(nc, u, body)
		if errors.Is(err, errBadChunk) {
			// The client's chunked body is malformed: net/http's forwarder answers 502 too,
			// and the backend has part of a request, so its connection goes.
			c.s.putReader(br)
			_ = nc.Close()
			c.s.log.Debug("malformed chunked request body", "err", err)
			c.code = http.StatusBadGateway
			c.reply(r, http.StatusBadGateway, "Bad Gateway", badGatewayBody, false, "")
			return false
		}
		if err != nil && isReadError(err) { // the client went away while sending its body
			c.s.putReader(br)
			_ = nc.Close()
			c.code = statusClientClosed
			return false
		}
		got := false
		if err == nil || c.consumed {
			// After a failed write the backend may still have answered (it need not read
			// a body it does not want): take its answer if there is one.
			var rerr error
			got, rerr = c.rh.read(br)
			if rerr == nil {
				return c.respond(u, nc, br, err == nil)
			}
			if werr := c.x.werr; werr != nil { // the deferred write failed
				err, nothingSent = werr, c.x.wrote == 0
			} else if err == nil {
				err = rerr
			}
		}
		c.s.putReader(br)
		_ = nc.Close()
		if reused && !got && replayable && (nothingSent || idempotent(r.method)) {
			// The backend closed the idle connection as it was reused (net/http's
			// transport retries these too).
			fresh = true
			continue
		}
		if !got && errors.Is(err, io.EOF) {
			err = errNoResponse
		}
		if next := x.Retry(err, replayable && !c.consumed); next != nil {
			u = next
			continue
		}
		return c.badGateway(u, body, err)
	}
}

// send writes the request to the backend: the head, then the body (held whole, or
// streamed from the client). nothingSent reports a write that failed before any byte left.
func (c *conn) send(nc net.Conn, u *Upstream, body []byte) (nothingSent bool, err error) {
	r := &c.req
	out := appendHead(c.out[:0], r, c.ip, u.addr)
	streamed := r.hasBody() && body == nil
	if !streamed {
		out = append(out, body...)
	}
	c.out = out
	if !streamed && c.x.deferWrite(out) {
		return false, nil // written by the first read of the response (see backendTrip)
	}
	n, err := nc.Write(out)
	if err != nil || !streamed {
		return n == 0, err
	}
	c.consumed = true
	w := c.s.getWriter(nc)
	defer c.s.putWriter(w)
	if r.chunked {
		err = copyChunked(w, c, true)
	} else {
		err = copyN(w, c, r.length)
	}
	if err == nil {
		err = w.Flush()
	}
	return false, err
}

// appendHead appends the head of r as the fast path sends it to the backend at addr: the
// request line in HTTP/1.1, the fields that are not hop-by-hop, and X-Forwarded-For (ip),
// -Host and -Proto. The framing fields go in the one spelling every server reads alike
// ("Transfer-Encoding: chunked", Content-Length without leading zeros), as net/http
// writes them: a backend that took "CHUNKED" for no coding would read the body as a
// request.
func appendHead(out []byte, r *Request, ip, addr string) []byte {
	out = append(out, r.method...)
	out = append(out, ' ')
	out = append(out, r.target...)
	out = append(out, " HTTP/1.1\r\n"...)
	if !r.hasHost {
		out = append(out, "Host: "...)
		out = append(out, addr...)
		out = append(out, "\r\n"...)
	}
	for _, f := range r.fields {
		if hopRequest(f.name, &r.conn) {
			if equalFoldAny(f.name, "Te") && hasTrailers(f.value) {
				out = append(out, "Te: trailers\r\n"...)
			}
			continue
		}
		switch {
		case asciiEqualFold(f.name, "Transfer-Encoding"):
			out = append(out, "Transfer-Encoding: chunked\r\n"...)
			continue
		case asciiEqualFold(f.name, "Content-Length"):
			out = append(out, "Content-Length: "...)
			out = strconv.AppendInt(out, r.length, 10)
			out = append(out, "\r\n"...)
			continue
		}
		out = append(out, f.name...)
		out = append(out, ": "...)
		out = append(out, f.value...)
		out = append(out, "\r\n"...)
	}
	if ip != "" {
		out = append(out, "X-Forwarded-For: "...)
		out = append(out, ip...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "X-Forwarded-Host: "...)
	out = append(out, r.host...)
	return append(out, "\r\nX-Forwarded-Proto: http\r\n\r\n"...)
}

// Body framings of a response.
const (
	bodyNone    = iota // HEAD, 1xx, 204, 304
	bodyLength         // Content-Length
	bodyChunked        // chunked: re-framed, or decoded for HTTP/1.0 clients
	bodyToEOF          // until the backend closes: re-chunked, or raw for HTTP/1.0 clients
)

// respond copies the response whose head was just read (c.rh) to the client, then gives
// the connection back to backend u for reuse when its response ended cleanly. sent reports
// whether the whole request went out (else the client connection is closed after).
func (c *conn) respond(u *Upstream, nc net.Conn, br *bufio.Reader, sent bool) bool {
	r, h, bw := &c.req, &c.rh, c.bw
	for h.code < 200 && h.code != http.StatusSwitchingProtocols { // 103 Early Hints and the like
		if r.proto == 11 {
			c.writeHead(h, false, "")
			_, _ = bw.WriteString("\r\n")
			if err := bw.Flush(); err != nil {
				c.s.putReader(br)
				_ = nc.Close()
				return false
			}
		}
		if _, err := h.read(br); err != nil {
			c.s.putReader(br)
			_ = nc.Close()
			return c.badGateway(u, nil, err)
		}
	}
	if h.code == http.StatusSwitchingProtocols { // not asked for: upgrades go to net/http
		c.s.putReader(br)
		_ = nc.Close()
		return c.badGateway(u, nil, errBadResponse)
	}
	c.code = h.code
	mode := bodyLength
	switch {
	case r.method == http.MethodHead || h.code == http.StatusNoContent || h.code == http.StatusNotModified:
		mode = bodyNone
	case h.chunked:
		mode = bodyChunked
	case h.length < 0:
		mode = bodyToEOF
	}
	unknownLength := mode == bodyChunked || mode == bodyToEOF
	keep := sent && !r.close && !c.s.closing.Load() && (r.proto == 11 || !unknownLength)
	chunkOut := r.proto == 11 && unknownLength
	var extra string
	if chunkOut {
		extra = "Transfer-Encoding: chunked\r\n"
	}
	c.writeHead(h, mode == bodyChunked && chunkOut, extra)
	_, _ = bw.WriteString(c.header)
	c.writeConnection(r, keep)
	_, _ = bw.WriteString("\r\n")

	src := upReader{br}
	var err error
	switch mode {
	case bodyLength:
		err = copyN(bw, src, h.length)
	case bodyChunked:
		err = copyChunked(bw, src, chunkOut)
	case bodyToEOF:
		buf := c.s.buffers.Get()
		err = copyToEOF(bw, src, buf, chunkOut)
		c.s.buffers.Put(buf)
	}
	// Bytes past the end of the answer (a body on HEAD, 204 or 304, more than
	// Content-Length said) make the connection unusable: they would be read as the answer
	// to the next request. Those that come later are found before the next use (get).
	if err == nil && sent && mode != bodyToEOF && !h.close && br.Buffered() == 0 {
		c.s.putReader(br)
		u.put(nc, c.now) // the request's start: the idle time is over-estimated, never under
	} else {
		c.s.putReader(br)
		_ = nc.Close()
	}
	if err != nil {
		u.log.Debug("response cut short", "err", err)
		return false
	}
	return keep
}

// writeHead writes the status line and the forwarded headers of h, then extra; it does not
// end the head. Content-Length goes once, as plain digits, even when Connection lists it:
// the body is framed by it.
func (c *conn) writeHead(h *respHead, keepTrailer bool, extra string) {
	bw := c.bw
	_, _ = bw.WriteString("HTTP/1.1 ")
	_, _ = bw.Write(h.reason())
	if len(h.reason()) == 3 { // no reason phrase: net/http's
		_, _ = bw.WriteString(" ")
		_, _ = bw.WriteString(http.StatusText(h.code))
	}
	_, _ = bw.WriteString("\r\n")
	wroteLength := false
	for _, f := range h.fields {
		name := h.name(f)
		if asciiEqualFold(name, "Content-Length") {
			if !h.chunked && !wroteLength {
				wroteLength = true
				_, _ = bw.WriteString("Content-Length: ")
				_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), h.length, 10))
				_, _ = bw.WriteString("\r\n")
			}
			continue
		}
		if isHop(name, &h.conn) || asciiEqualFold(name, "Transfer-Encoding") ||
			(!keepTrailer && asciiEqualFold(name, "Trailer")) {
			continue
		}
		_, _ = bw.Write(h.line(f))
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString(extra)
}

// equalFoldAny reports whether s equals one of list, ignoring case.
func equalFoldAny(s string, list ...string) bool {
	for _, l := range list {
		if asciiEqualFold(s, l) {
			return true
		}
	}
	return false
}
