package handover_test

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/handover"
)

func TestListenerFile_SharesTheSocketAndStaysNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := handover.ListenerFile(ln)
	if err != nil {
		t.Fatal(err)
	}
	// Passing it to a child (which calls Fd) must not make the shared socket blocking.
	cmd := exec.Command("true")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	flags, err := fdFlags(ln)
	if err != nil {
		t.Fatal(err)
	}
	if flags&syscall.O_NONBLOCK == 0 {
		t.Errorf("the listener's socket became blocking after its file was passed to a child")
	}

	// The duplicate is the same socket: it accepts on the same address after the original
	// is closed.
	dup, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	defer dup.Close()
	if dup.Addr().String() != ln.Addr().String() {
		t.Errorf("duplicate bound to %s, want %s", dup.Addr(), ln.Addr())
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s after closing the original: %v", addr, err)
	}
	defer conn.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := dup.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if err != nil {
			t.Errorf("accept on the duplicate: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the duplicate accepted nothing")
	}
}

// fdFlags returns the file status flags of ln's socket.
func fdFlags(ln net.Listener) (int, error) {
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var flags uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(flags), nil
}
