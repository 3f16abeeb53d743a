package dataplane

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
)

// peerListener accepts only connections from processes of this process's user (the
// socket's mode already says so; this holds even if the mode were changed).
type peerListener struct {
	net.Listener
	log *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := samePeer(c); err != nil {
			l.log.Warn("control connection refused", "err", err)
			_ = c.Close()
			continue
		}
		return c, nil
	}
}

// samePeer returns an error unless c's peer runs as this process's user.
func samePeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("%T is not a unix socket", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("peer pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, os.Getuid())
	}
	return nil
}
