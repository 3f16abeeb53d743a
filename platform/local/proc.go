package local

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStat returns the state letter (field 3) and the start time in clock ticks since boot
// (field 22) of process pid from /proc/<pid>/stat. The start time tells a process from a
// later one that reuses its pid.
func procStat(pid int) (state byte, start uint64, err error) {
	st, err := procInfo(pid)
	return st.state, st.start, err
}

// procStatus is what /proc/<pid>/stat tells about a process.
type procStatus struct {
	state      byte   // field 3: R, S, D, Z, ...
	ppid, pgid int    // fields 4 and 5
	start      uint64 // field 22, in clock ticks since boot
}

// procInfo reads /proc/<pid>/stat.
func procInfo(pid int) (procStatus, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStatus{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces or parentheses; the
	// fields after the last ')' are plain.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStatus{}, fmt.Errorf("stat of pid %d: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStatus{}, fmt.Errorf("stat of pid %d: %d fields", pid, len(f)+2)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil || len(f[0]) != 1 {
		return procStatus{}, fmt.Errorf("stat of pid %d: bad start time %q or state %q", pid, f[19], f[0])
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procStatus{}, fmt.Errorf("stat of pid %d: bad parent %q or group %q", pid, f[1], f[2])
	}
	return procStatus{state: f[0][0], ppid: ppid, pgid: pgid, start: start}, nil
}

// running reports whether pid is a live (not zombie) process that started at start.
func running(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	state, st, err := procStat(pid)
	return err == nil && st == start && state != 'Z' && state != 'X'
}

// reap reports whether process pid (started at start) has ended, and how. A child of this
// server is reaped with wait4; a process this server adopted after a restart is not its
// child, so it is watched by kill(pid, 0) and its start time instead.
func reap(pid int, start uint64) (ended bool, how string) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err == nil && got == pid:
			return true, describeExit(ws)
		case err == nil:
			return false, ""
		}
		// ECHILD: not our child.
		if running(pid, start) {
			return false, ""
		}
		return true, "process ended"
	}
}

// describeExit says how a process ended.
func describeExit(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	default:
		return "ended"
	}
}

// signalGroup sends sig to the process group led by pid (every instance runs in its own
// group, so helpers it started go with it). A group that is already gone is not an error.
func signalGroup(pid int, sig syscall.Signal) {
	if pid > 0 {
		_ = syscall.Kill(-pid, sig)
	}
}

// waitEnded polls until process pid has ended or d has passed, and reports whether it ended.
func waitEnded(pid int, start uint64, d time.Duration) (ended bool, how string) {
	deadline := time.Now().Add(d)
	for {
		if ended, how := reap(pid, start); ended {
			return true, how
		}
		if time.Now().After(deadline) {
			return false, ""
		}
		time.Sleep(exitPoll / 2)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}
