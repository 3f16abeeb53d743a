package fastpath

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Fast-path backend connections.
const (
	// maxRespHead bounds a backend's response head.
	maxRespHead   = 1 << 20
	upReaderSize  = 16 << 10
	clientBufSize = 16 << 10
	// The dial timeout and TCP keep-alive of backend connections, how long one stays
	// idle before it is closed, and how many idle ones a backend keeps: those of the
	// http.Transport package proxy forwards with on its net/http path.
	dialTimeout     = 5 * time.Second
	keepAlive       = 30 * time.Second
	idleConnTimeout = 90 * time.Second
	maxIdleConns    = 512
)

var (
	errBadResponse = errors.New("malformed response from backend")
	errNoResponse  = errors.New("backend closed the connection before answering")
)

// Upstream is one backend as the fast path sees it: an address and the keep-alive
// connections to it. Its Router keeps one per backend for as long as the backend lives,
// so that connections are reused across requests, and Retires it when the backend goes.
type Upstream struct {
	addr   string
	log    *slog.Logger
	dialer net.Dialer
	idle   idlePool
}

// NewUpstream returns the Upstream of the backend at addr (host:port). log receives what
// goes wrong with its requests (with the attributes that name the backend); nil discards
// it.
func NewUpstream(addr string, log *slog.Logger) *Upstream {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Upstream{addr: addr, log: log, dialer: net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}}
}

// CloseIdle closes the idle connections to the backend; connections in use are left
// alone, and kept when their requests end.
func (u *Upstream) CloseIdle() { u.closeIdle(false) }

// Retire closes the idle connections to the backend, and every connection in use once its
// request ends: the backend is gone.
func (u *Upstream) Retire() { u.closeIdle(true) }

// upConn is a keep-alive connection to a backend, used by one request at a time.
type upConn struct {
	nc    net.Conn
	since time.Time // when it went idle
}

// idlePool holds a backend's idle connections, most recently used last.
type idlePool struct {
	mu     sync.Mutex
	conns  []upConn
	closed bool // the backend is retired: connections given back are closed
}

// dial dials a new connection to the backend.
func (u *Upstream) dial() (net.Conn, error) { return dialBackend(&u.dialer, u.addr) }

// get returns an idle connection (reused true) or dials a new one.
//
// Every idle connection is checked before it is used again (alive: one non-blocking peek),
// since the fast path keeps no reader on idle connections, as net/http's transport does
// with its read loop: one the backend closed is dropped, and so is one on which the
// backend sent anything after its last answer (a body on HEAD, 204 or 304, bytes past
// Content-Length, a second answer), which would otherwise be read as the answer to the
// next request, another user's.
func (u *Upstream) get(now time.Time) (nc net.Conn, reused bool, err error) {
	for {
		u.idle.mu.Lock()
		n := len(u.idle.conns)
		if n == 0 {
			u.idle.mu.Unlock()
			break
		}
		c := u.idle.conns[n-1]
		u.idle.conns[n-1] = upConn{}
		u.idle.conns = u.idle.conns[:n-1]
		u.idle.mu.Unlock()
		idle := now.Sub(c.since)
		if idle > idleConnTimeout || !alive(c.nc) {
			_ = c.nc.Close()
			continue
		}
		return c.nc, true, nil
	}
	nc, err = u.dial()
	return nc, false, err
}

// put gives nc back for reuse (or closes it when the pool is full or closed).
func (u *Upstream) put(nc net.Conn, now time.Time) {
	u.idle.mu.Lock()
	if u.idle.closed || len(u.idle.conns) >= maxIdleConns {
		u.idle.mu.Unlock()
		_ = nc.Close()
		return
	}
	var stale net.Conn
	if len(u.idle.conns) > 0 && now.Sub(u.idle.conns[0].since) > idleConnTimeout {
		stale = u.idle.conns[0].nc
		u.idle.conns = append(u.idle.conns[:0], u.idle.conns[1:]...)
	}
	u.idle.conns = append(u.idle.conns, upConn{nc: nc, since: now})
	u.idle.mu.Unlock()
	if stale != nil {
		_ = stale.Close()
	}
}

// closeIdle closes the idle connections; with retire, connections given back later are
// closed too.
func (u *Upstream) closeIdle(retire bool) {
	u.idle.mu.Lock()
	conns := u.idle.conns
	u.idle.conns = nil
	if retire {
		u.idle.closed = true
	}
	u.idle.mu.Unlock()
	for _, c := range conns {
		_ = c.nc.Close()
	}
}

// upReader reads a backend's response.
type upReader struct{ *bufio.Reader }

// bufferedLine reports whether a whole line is buffered (reading it will not block).
func (r upReader) bufferedLine() bool {
	b, _ := r.Peek(r.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// span locates one header line in respHead.raw: [start, end), name ending at colon.
type span struct{ start, colon, end int }

// respHead is a backend's parsed response head; raw holds its bytes (without line ends).
type respHead struct {
	raw     []byte
	status  span // the status line
	fields  []span
	code    int
	length  int64 // Content-Length; -1 when absent
	chunked bool
	close   bool // the backend closes the connection after this response
	conn    connTokens
	trailer bool
}

func (h *respHead) name(s span) []byte  { return h.raw[s.start:s.colon] }
func (h *respHead) value(s span) []byte { return trimOWS(h.raw[s.colon+1 : s.end]) }
func (h *respHead) line(s span) []byte  { return h.raw[s.start:s.end] }

// reason returns the status line after "HTTP/1.x ": the code and reason phrase.
func (h *respHead) reason() []byte { return h.raw[h.status.start+9 : h.status.end] }

// read reads and parses one response head. got reports whether any byte of it arrived
// (a failure before the first byte may be retried).
//
// The head is passed on to the client line by line as received, so it is held to what
// net/http's ReadResponse accepts and more: lines end in CRLF or LF; the status line is
// HTTP/1.x, a space, three digits from 100, and a reason phrase (passed on too, where
// net/http writes its own) without control characters; each field is a token, a colon
// and a value without control characters (no folded line, which net/http would join to
// the one before, and no NUL or lone CR, which a client may read as a line end); one
// Transfer-Encoding, chunked, on HTTP/1.1 only (net/http ignores it on HTTP/1.0 and
// frames the body another way); Content-Length values all the same bytes. Anything else
// is errBadResponse: the client gets 502.
func (h *respHead) read(br *bufio.Reader) (got bool, err error) {
	h.raw, h.fields = h.raw[:0], h.fields[:0]
	h.conn.reset()
	h.code, h.length, h.chunked, h.close, h.trailer = 0, -1, false, false, false
	st, err := h.readLine(br)
	if err != nil {
		if len(h.raw) == 0 && br.Buffered() == 0 {
			return false, err
		}
		return true, err
	}
	h.status = st
	line := h.raw[st.start:st.end]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[7] < '0' || line[7] > '9' ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') || !validValue(line[12:]) {
		return true, errBadResponse
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return true, errBadResponse
		}
		h.code = h.code*10 + int(c-'0')
	}
	if h.code < 100 {
		return true, errBadResponse
	}
	http10 := line[7] == '0'
	var length, te []byte
	for {
		s, err := h.readLine(br)
		if err != nil {
			return true, err
		}
		if s.start == s.end {
			break
		}
		colon := bytes.IndexByte(h.raw[s.start:s.end], ':')
		if colon <= 0 {
			return true, errBadResponse
		}
		s.colon = s.start + colon
		h.fields = append(h.fields, s)
		name, value := h.name(s), h.value(s)
		if !isToken(name) || !validValue(h.raw[s.colon+1:s.end]) {
			return true, errBadResponse
		}
		switch {
		case asciiEqualFold(name, "Content-Length"):
			// More than one must be the same bytes, as net/http wants them ("2" and "002"
			// are not).
			n, ok := parseLength(value)
			if !ok || (length != nil && !bytes.Equal(value, length)) {
				return true, errBadResponse
			}
			length = value
			h.length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			if te != nil {
				return true, errBadResponse
			}
			te = value
		case asciiEqualFold(name, "Connection"):
			h.conn.add(string(value))
		case asciiEqualFold(name, "Trailer"):
			h.trailer = true
		}
	}
	if te != nil {
		if http10 || !asciiEqualFold(te, "chunked") {
			return true, errBadResponse
		}
		h.chunked, h.length = true, -1
	}
	h.close = h.conn.close || (http10 && !h.conn.keepAlive)
	return true, nil
}

// readLine appends the next line (without its line end) to raw and returns where it is.
func (h *respHead) readLine(br *bufio.Reader) (span, error) {
	start := len(h.raw)
	for {
		b, err := br.ReadSlice('\n')
		if len(h.raw)+len(b) > maxRespHead {
			return span{}, errBadResponse
		}
		h.raw = append(h.raw, b...)
		switch {
		case err == nil:
			h.raw = trimEOL(h.raw)
			return span{start: start, end: len(h.raw)}, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return span{}, err
		}
	}
}

// asciiEqualFold reports whether b equals s, ignoring ASCII case.
func asciiEqualFold[T string | []byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		x, y := b[i], s[i]
		if x|0x20 != y|0x20 || (x|0x20 < 'a' || x|0x20 > 'z') && x != y {
			return false
		}
	}
	return true
}
