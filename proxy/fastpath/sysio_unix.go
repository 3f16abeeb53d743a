//go:build unix && !linux

package fastpath

import "syscall"

// sysRead is read(2) on a non-blocking socket (the Linux build makes it a raw system call).
func sysRead(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }

// sysPeek is recv(2) with MSG_PEEK|MSG_DONTWAIT into b: EAGAIN when nothing is there to
// read, nil when bytes or the end of the stream are.
func sysPeek(fd uintptr, b []byte) error {
	_, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err
}

// sysWrite is write(2) on a non-blocking socket.
func sysWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
