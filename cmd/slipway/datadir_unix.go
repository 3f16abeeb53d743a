//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockFileName is the file in the data directory whose lock (flock) the serving server
// holds. A restart in place hands the lock to the new server with its sockets.
const lockFileName = "lock"

// lockWait is how long a held lock is tried again before a server gives up. A server
// killed while it was starting an instance process leaves the lock held for a moment after
// it is gone: the lock is on an open file that the half-started child shares until it
// execs the instance's command (which closes it). Tens of milliseconds on a busy machine.
const lockWait = 2 * time.Second

// lockDataDir takes the data directory's lock, or adopts inherited (the lock a restart in
// place handed down). A second server on the same directory gets an error naming the
// holder's pid (after lockWait); the lock goes with the process, so a killed server leaves
// none behind.
func lockDataDir(dir string, inherited *os.File) (*os.File, error) {
	if inherited != nil {
		return inherited, nil
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	for errors.Is(err, syscall.EWOULDBLOCK) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another slipway server (%s); stop it first, or give this one another --data", dir, holder(dir))
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	// Record who holds it, for the error above.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// holder says which process holds the lock of dir, as well as it is known.
func holder(dir string) string {
	for _, name := range []string{pidFileName, lockFileName} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return "pid " + strconv.Itoa(pid)
			}
		}
	}
	return "pid unknown"
}

// dupFile returns a new descriptor for f's open file (it shares f's lock), for a child. It
// is close-on-exec, so that no other child (an app instance) can inherit the lock.
func dupFile(f *os.File) (*os.File, error) {
	syscall.ForkLock.RLock()
	fd, err := syscall.Dup(int(f.Fd()))
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("duplicate %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
