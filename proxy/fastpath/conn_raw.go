package fastpath

import (
	"errors"
	"io"
	"time"
)

// The client side of the fast path, in steady state, runs inside one syscall.RawConn.Read
// of the client connection (loop, step) rather than around net.Conn.Read.
//
// Why: net.Conn.Read always tries a read before it waits, so the read for the next request
// right after a response was written finds nothing and costs a system call that returns
// EAGAIN. Inside a RawConn read the runtime's readiness of the socket is kept between the
// callback's calls: step reads, serves what it read, and then reports false to wait for the
// next request without trying first. Bytes that arrive after step's last read mark the
// socket ready, so the wait cannot miss them; a read that filled the buffer is followed by
// another read before any wait.
//
// Only the plain case runs there: a whole request head in what was read, a parsed request
// for the fast path, its body (if any) held whole. Anything else (a head in several reads,
// a body to stream, a hand-off, shutdown) leaves the RawConn read and goes through the
// ordinary loop of serve for that request, which never reads the client inside the
// callback (fillMore refuses to: the callback holds the connection's read lock).

// Why loop returned.
const (
	loopSlow    = iota // serve the next request by the ordinary loop
	loopClose          // close the connection
	loopWoken          // shutdown woke the wait and the read got bytes or an error (see await)
	loopHandOff        // the Router handed the request just read to net/http
)

// errInLoop is what fillMore returns when called inside the RawConn read: a bug, but one
// that fails a request rather than deadlocks the connection.
var errInLoop = errors.New("fastpath: client read inside the raw read loop")

// loop serves requests inside a RawConn read of the client connection until one needs the
// ordinary loop (it reports true then) or the connection is done (false), closed or handed
// to net/http (c.handed).
func (c *conn) loop() bool {
	c.exit, c.exitErr, c.waiting, c.readIn = loopSlow, nil, false, false
	if c.stepf == nil {
		c.stepf = c.step
	}
	c.inLoop = true
	err := c.rc.Read(c.stepf)
	c.inLoop = false
	if err != nil { // a deadline (idle, or shutdown's wake) or a closed connection
		c.state.Store(connBusy)
		return false
	}
	switch c.exit {
	case loopWoken: // as await after its read
		if c.exitErr != nil {
			return false
		}
		c.s.mu.Lock()
		err = c.setDeadline(time.Time{})
		c.s.mu.Unlock()
		return err == nil
	case loopSlow:
		return true
	case loopHandOff:
		c.handed = c.handOff(c.req.head)
	}
	return false
}

// step is loop's RawConn.Read callback: true leaves the RawConn read (c.exit says why),
// false waits until the client connection is readable.
func (c *conn) step(fd uintptr) bool {
	for {
		if c.r == c.w {
			if !c.waiting {
				if !c.prepareWait() {
					return true
				}
				st := connFresh
				if c.served {
					st = connIdle
				}
				c.state.Store(st)
				if c.s.closing.Load() { // await decides
					c.exit = loopSlow
					return true
				}
				c.waiting = true
				if c.readIn && !c.full {
					return false // what came since the last read has marked the socket ready
				}
			}
			n, wouldBlock, err := rawRead(fd, c.buf[c.w:])
			if wouldBlock {
				return false
			}
			c.waiting, c.readIn = false, true
			c.full = n == len(c.buf)-c.w
			c.w += n
			if err == nil && n == 0 {
				err = io.EOF
			}
			if c.state.Swap(connBusy) == connWoken {
				c.exit, c.exitErr = loopWoken, err
				return true
			}
			if err != nil {
				c.exit = loopClose
				return true
			}
		}
		n := headEnd(c.buf[c.r:c.w], 0)
		if n < 0 || n > maxHeadBytes { // several reads (readHead times them), or too large
			c.exit = loopSlow
			return true
		}
		if !parseRequest(string(c.buf[c.r:c.r+n]), &c.req) {
			c.exit = loopSlow // the ordinary loop parses again and hands off
			return true
		}
		r := &c.req
		if r.hasBody() && (r.chunked || r.length > maxReplayBody || int64(c.w-c.r-n) < r.length) {
			c.exit = loopSlow
			return true
		}
		c.r += n
		switch c.serveRequest() {
		case closeConn:
			c.exit = loopClose
			return true
		case handOffConn:
			c.exit = loopHandOff
			return true
		}
		c.served = true
	}
}

// prepareWait readies the connection to wait for a request when its buffer is empty: the
// buffer back to its first size, the idle deadline. It reports false (with c.exit set) when
// the connection must close.
func (c *conn) prepareWait() bool {
	c.rewind()
	if err := c.idleDeadline(); err != nil {
		c.exit = loopClose
		return false
	}
	return true
}

// headDeadline is when the request head the connection waits for must be whole:
// readHeaderTimeout after the accept for the first request, after now for the others (their
// first bytes have just come).
func (c *conn) headDeadline() time.Time {
	if !c.served {
		return c.accepted.Add(readHeaderTimeout)
	}
	return time.Now().Add(readHeaderTimeout)
}

// rewind empties the buffer, all of it consumed, back to its first size.
func (c *conn) rewind() {
	c.r, c.w = 0, 0
	if len(c.buf) > connBufSize {
		c.buf = make([]byte, connBufSize)
	}
}

// idleDeadline moves the read deadline to idleTimeout from the end of the last request. It
// moves at most once a second: a deadline change costs a timer update, and keep-alive
// connections wait for thousands of requests a second. A fresh connection has no idle
// time: it must send its first request head within readHeaderTimeout of its accept, as
// net/http's server has it.
func (c *conn) idleDeadline() error {
	if !c.served {
		if want := c.headDeadline(); !want.Equal(c.deadline) {
			return c.setDeadline(want)
		}
		return nil
	}
	now := c.now
	if now.IsZero() {
		now = time.Now()
	}
	if want := now.Add(idleTimeout); c.deadline.IsZero() || want.Before(c.deadline) || want.Sub(c.deadline) > time.Second {
		return c.setDeadline(want)
	}
	return nil
}
