//go:build !unix

package fastpath

import (
	"net"
	"syscall"
)

// dialBackend dials a backend connection.
func dialBackend(d *net.Dialer, addr string) (net.Conn, error) { return d.Dial("tcp", addr) }

// rawOf returns nil: the round trip writes and reads through net.Conn.
func rawOf(net.Conn) syscall.RawConn { return nil }

// alive reports false: without a non-blocking peek, an idle connection cannot be checked
// for bytes the backend sent after its last answer, so none is used again.
func alive(net.Conn) bool { return false }

// step is never called (rawOf returns nil).
func (x *backendTrip) step(uintptr) bool { return true }

// rawConnOf returns nil: the client side uses the ordinary loop only.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

// rawRead is never called (rawConnOf returns nil).
func rawRead(uintptr, []byte) (int, bool, error) { return 0, false, errInLoop }

// rawWriter is never used (rawConnOf returns nil).
type rawWriter struct{ rc syscall.RawConn }

func (*rawWriter) Write([]byte) (int, error) { return 0, errInLoop }

// shutdownSocket does nothing (rawConnOf returns nil).
func shutdownSocket(syscall.RawConn) {}
