//go:build unix

package dataplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// maxSocketPath is the size of a unix socket address's path (sun_path), its NUL included.
const maxSocketPath = 108

// lockDir takes dir's data-plane lock (flock, released with the process), or says which
// data plane holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data plane: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "unknown"
			if pid, err := readPID(dir); err == nil && pid > 0 {
				holder = strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("data plane: another data plane serves %s (pid %s)", dir, holder)
		}
		return nil, fmt.Errorf("data plane: lock: %w", err)
	}
	return f, nil
}

// unlinked reports whether f's file has been removed from every directory (its data
// directory was deleted, say).
func unlinked(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

// readPID returns the pid in dir's data-plane pid file: 0 when there is none, an error when
// it holds no pid.
func readPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, PIDName))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("data plane pid file: %q is not a pid", b)
	}
	return pid, nil
}

// detached starts a process in a session of its own: no signal sent to the server's
// process group or terminal (Ctrl-C) reaches it, and it outlives the server.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// alive reports whether a process pid exists (a zombie counts as ended).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// The state follows the command in parentheses: "pid (comm) S ...".
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
			return b[i+2] != 'Z'
		}
		return true
	}
	return syscall.Kill(pid, 0) == nil
}

// killDataPlane sends SIGKILL to the process dir's pid file names when its environment
// marks it as dir's data plane (EnvMark), and returns its pid; 0 when none runs.
func killDataPlane(dir string) (int, error) {
	pid, err := readPID(dir)
	if err != nil || pid == 0 {
		return 0, err
	}
	if !alive(pid) {
		return 0, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return 0, fmt.Errorf("data plane pid %d: %w", pid, err)
	}
	if !slices.Contains(strings.Split(string(env), "\x00"), EnvMark+"="+abs) {
		return 0, fmt.Errorf("process %d is not the data plane of %s (no %s mark); left alone", pid, dir, EnvMark)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return 0, fmt.Errorf("kill data plane %d: %w", pid, err)
	}
	return pid, nil
}
