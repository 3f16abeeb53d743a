//go:build unix && !linux

package proxy

import "syscall"

// sysRead is read(2) on a non-blocking socket (the Linux build makes it a raw system call).
func sysRead(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }

// sysWrite is write(2) on a non-blocking socket.
func sysWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
