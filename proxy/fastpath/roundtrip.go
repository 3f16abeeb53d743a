package fastpath

import (
	"net"
	"syscall"
)

// backendTrip is the round trip of one request to its backend on the fast path: the backend
// connection as the source of the response reader, with the request's write deferred into
// the first read when the request is held whole.
//
// Why: Go's net.Conn.Read always tries a read before it waits for the socket, and the
// runtime forgets what it knew of the socket's readiness when a read starts. A read right
// after sending a request finds nothing (the backend has not answered yet) and costs a
// system call that returns EAGAIN. Writing the request inside the read's RawConn callback,
// after the runtime has reset the readiness and before it waits, lets the first read wait
// without trying: the answer's arrival cannot be missed, since it can only come after the
// write. That is one system call fewer per request.
type backendTrip struct {
	net.Conn // the backend connection: writes and later reads go straight to it

	rc    syscall.RawConn // nil: nothing is deferred
	out   []byte          // request bytes not written yet
	wrote int             // request bytes written by the deferred write
	werr  error           // the deferred write's error

	p     []byte // the current Read's buffer, while step runs
	n     int
	rerr  error
	stepf func(uintptr) bool // x.step, bound once
}

// reset makes x the round trip of one request on nc.
func (x *backendTrip) reset(nc net.Conn) {
	x.Conn, x.rc, x.out, x.wrote, x.werr = nc, rawOf(nc), nil, 0, nil
}

// release drops the connection (it may be in the pool now, serving another request).
func (x *backendTrip) release() { x.Conn, x.rc, x.out = nil, nil, nil }

// deferWrite defers writing out (the whole request) to the first Read, and reports whether
// it did; out must stay untouched until then.
func (x *backendTrip) deferWrite(out []byte) bool {
	if x.rc == nil || len(out) == 0 {
		return false
	}
	x.out = out
	return true
}

// Read reads the response; the first Read after deferWrite writes the request first.
func (x *backendTrip) Read(p []byte) (int, error) {
	if len(x.out) == 0 {
		if x.werr != nil {
			return 0, x.werr
		}
		return x.Conn.Read(p)
	}
	if x.stepf == nil {
		x.stepf = x.step
	}
	x.p, x.n, x.rerr = p, 0, nil
	err := x.rc.Read(x.stepf)
	x.p = nil
	switch {
	case x.werr != nil:
		return 0, x.werr
	case err != nil:
		if len(x.out) > 0 { // not a byte more was written
			x.out, x.werr = nil, err
		}
		return 0, err
	case len(x.out) > 0: // the socket took part of the request: write the rest as usual
		n, err := x.Write(x.out)
		x.wrote += n
		x.out = nil
		if err != nil {
			x.werr = err
			return 0, err
		}
		return x.Conn.Read(p)
	}
	return x.n, x.rerr
}

// opError wraps a system call's error as net.Conn's methods do.
func (x *backendTrip) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: x.LocalAddr(), Addr: x.RemoteAddr(), Err: err}
}
