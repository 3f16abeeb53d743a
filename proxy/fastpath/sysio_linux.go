package fastpath

import (
	"syscall"
	"unsafe"
)

// sysRead is read(2) on a non-blocking socket. Such a read never sleeps in the kernel, so
// it is made without telling the scheduler of a system call (syscall.RawSyscall): when the
// kernel preempts the thread inside it, the thread keeps its P, instead of the runtime's
// monitor taking the P away and handing it to another thread that has to be woken, and
// the monitor itself stays asleep. On a machine whose cores the proxy shares with its
// clients and backends, that saves several per cent of the CPU each request costs (see
// docs/benchmarks.md, section "Proxy").
func sysRead(fd uintptr, b []byte) (int, error) { return rawSyscall(syscall.SYS_READ, fd, b) }

// sysWrite is write(2) on a non-blocking socket, made as sysRead is.
func sysWrite(fd uintptr, b []byte) (int, error) { return rawSyscall(syscall.SYS_WRITE, fd, b) }

// sysPeek is recv(2) with MSG_PEEK|MSG_DONTWAIT into b, made as sysRead is: it reports
// EAGAIN when nothing is there to read, nil when bytes or the end of the stream are.
func sysPeek(fd uintptr, b []byte) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), //nolint:gosec // G103: as syscall.Recvfrom passes a buffer
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// rawSyscall makes the read or write trap on fd with b.
func rawSyscall(trap, fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b))) //nolint:gosec // G103: as syscall.Read passes a buffer
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
