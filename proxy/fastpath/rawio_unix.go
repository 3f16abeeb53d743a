//go:build unix

package fastpath

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// dialBackend dials a backend connection, keeping its syscall.RawConn for the round trip's
// deferred write and for alive.
func dialBackend(d *net.Dialer, addr string) (net.Conn, error) {
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return &backendConn{Conn: nc, rc: rc}, nil
		}
	}
	return nc, nil
}

// backendConn is a backend connection with its syscall.RawConn, obtained once, and the
// peek that checks it while idle (alive), bound once so that a check allocates nothing.
type backendConn struct {
	net.Conn
	rc    syscall.RawConn
	peekf func(uintptr) bool
	quiet bool // the last peek found nothing to read and no end of stream
	b     [1]byte
}

// peek is alive's RawConn.Read callback.
func (c *backendConn) peek(fd uintptr) bool {
	err := sysPeek(fd, c.b[:])
	for errors.Is(err, syscall.EINTR) {
		err = sysPeek(fd, c.b[:])
	}
	c.quiet = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
	return true
}

// rawOf returns nc's syscall.RawConn, or nil.
func rawOf(nc net.Conn) syscall.RawConn {
	if r, ok := nc.(*backendConn); ok {
		return r.rc
	}
	return nil
}

// alive reports whether an idle backend connection may be used again: a non-blocking peek
// finds neither an end of stream, nor an error, nor bytes the backend should not have sent.
// A connection dialBackend did not wrap cannot be checked, and is not used again.
func alive(nc net.Conn) bool {
	c, ok := nc.(*backendConn)
	if !ok {
		return false
	}
	if c.peekf == nil {
		c.peekf = c.peek
	}
	return c.rc.Read(c.peekf) == nil && c.quiet
}

// step is the round trip's syscall.RawConn.Read callback: it writes the request bytes not
// written yet, then (once they are all out) reports false so that the runtime waits until
// the answer is readable, and then reads it. Reporting true with out not empty leaves the
// rest of the write to Read (the socket buffer was full).
func (x *backendTrip) step(fd uintptr) bool {
	if len(x.out) > 0 {
		n, wouldBlock, err := rawWrite(fd, x.out)
		x.out, x.wrote = x.out[n:], x.wrote+n
		switch {
		case err != nil:
			x.werr, x.out = x.opError("write", err), nil
			return true
		case wouldBlock:
			return true
		}
		// The answer cannot have come before the request: wait for it rather than try a
		// read that would find nothing.
		return false
	}
	n, wouldBlock, err := rawRead(fd, x.p)
	switch {
	case wouldBlock:
		return false
	case err != nil:
		x.n, x.rerr = 0, x.opError("read", err)
	case n == 0 && len(x.p) > 0:
		x.n, x.rerr = 0, io.EOF
	default:
		x.n, x.rerr = n, nil
	}
	return true
}

// rawConnOf returns nc's syscall.RawConn, or nil when it has none.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawRead reads into b from fd, a non-blocking socket; wouldBlock reports that nothing was
// there to read.
func rawRead(fd uintptr, b []byte) (n int, wouldBlock bool, err error) {
	for {
		n, err := sysRead(fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return 0, true, nil
		case err != nil:
			return 0, false, os.NewSyscallError("read", err)
		}
		return n, false, nil
	}
}

// rawWriter writes to a client connection inside a syscall.RawConn write of it, with
// sysWrite: the bufio.Writer of a served request flushes into it.
type rawWriter struct {
	rc   syscall.RawConn
	b    []byte // what Write has still to write
	n    int    // of b, written
	err  error
	step func(uintptr) bool // w.write, bound once
}

func (w *rawWriter) Write(b []byte) (int, error) {
	if w.step == nil {
		w.step = w.write
	}
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.step)
	w.b = nil
	if err == nil {
		err = w.err
	}
	return w.n, err
}

// write is the RawConn.Write callback: false waits until the socket is writable again.
func (w *rawWriter) write(fd uintptr) bool {
	n, wouldBlock, err := rawWrite(fd, w.b[w.n:])
	w.n += n
	if err != nil {
		w.err = err
		return true
	}
	return !wouldBlock
}

// rawWrite writes b to fd, a non-blocking socket, until all of it is written or the socket
// buffer is full (wouldBlock); n is what was written either way.
func rawWrite(fd uintptr, b []byte) (n int, wouldBlock bool, err error) {
	for n < len(b) {
		m, err := sysWrite(fd, b[n:])
		n += m
		switch {
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN):
			return n, true, nil
		case err != nil:
			return n, false, os.NewSyscallError("write", err)
		}
	}
	return n, false, nil
}

// shutdownSocket shuts both directions of rc's socket down, even while another goroutine is
// inside a RawConn read of it (which a Close would wait for).
func shutdownSocket(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
}
