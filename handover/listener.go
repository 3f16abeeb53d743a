package handover

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// ListenerFile returns a duplicate of ln's socket to pass to a child process
// (exec.Cmd.ExtraFiles); the caller closes it. Unlike the File method of net.TCPListener it
// leaves the socket non-blocking, which matters because the socket stays shared: a blocking
// one would stall this process's own accept loop. The child turns it back into a listener
// with net.FileListener.
func ListenerFile(ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("listener %s: %T has no file descriptor", ln.Addr(), ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", ln.Addr(), err)
	}
	var nfd uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		nfd, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("listener %s: %w", ln.Addr(), err)
	}
	if errno != 0 {
		return nil, fmt.Errorf("listener %s: duplicate: %w", ln.Addr(), errno)
	}
	return os.NewFile(nfd, "listener "+ln.Addr().String()), nil
}
