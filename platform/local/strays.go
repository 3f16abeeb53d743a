package local

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Marks and strays.
//
// Every instance process carries two environment variables: envInstanceData, the absolute
// data directory of the server that started it, and envInstance, "<app>/<instance ID>".
// Every process an instance starts inherits them. /proc/<pid>/environ shows the environment
// a process was started with, whoever its parent is now, so a server finds every process
// that belongs to its data directory even when the state file does not name it: one
// started by a server killed before it could record it, one whose record was lost. Those
// are strays: a server stops them (their process group with them) when it starts, before it
// starts any process of its own, and again when it takes over from another server (Resume).
//
// A marked process is not a stray when it is an instance the server adopted, a process of
// such an instance (its process group, or its mark naming the instance), or a child of the
// server itself (a probe it runs). Only processes of the server's own user can be read, and
// instances run as that user.

// Environment variables that mark an instance process.
const (
	envInstance     = "SLIPWAY_INSTANCE"      // <app>/<instance ID>
	envInstanceData = "SLIPWAY_INSTANCE_DATA" // the absolute data directory
)

// marked is a live process carrying the marks of this data directory.
type marked struct {
	pid, ppid, pgid int
	start           uint64
	app, id         string
}

// leads reports whether the process leads its own process group, as an instance does.
func (m marked) leads() bool { return m.pgid == m.pid }

// markOf returns the value of envInstanceData for dataDir: its absolute, clean path.
func markOf(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	if abs, err := filepath.Abs(dataDir); err == nil {
		return abs
	}
	return filepath.Clean(dataDir)
}

// scanMarked returns every live process marked as an instance of the data directory whose
// mark is data. Processes that end or cannot be read while it scans are left out.
func scanMarked(data string) []marked {
	if data == "" {
		return nil
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	wantData := []byte(envInstanceData + "=" + data)
	var out []marked
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid <= 0 {
			continue
		}
		env, err := os.ReadFile("/proc/" + d.Name() + "/environ")
		if err != nil || !bytes.Contains(env, wantData) {
			continue
		}
		m := marked{pid: pid}
		ours := false
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			switch {
			case bytes.Equal(kv, wantData):
				ours = true
			case bytes.HasPrefix(kv, []byte(envInstance+"=")):
				m.app, m.id, _ = strings.Cut(string(kv[len(envInstance)+1:]), "/")
			}
		}
		if !ours {
			continue
		}
		st, err := procInfo(pid)
		if err != nil || st.state == 'Z' || st.state == 'X' {
			continue
		}
		m.ppid, m.pgid, m.start = st.ppid, st.pgid, st.start
		out = append(out, m)
	}
	return out
}

// strays returns the marked processes that are not known: known holds the pids of the
// instances adopted (or running), ids the "<app>/<instance ID>" of each.
func strays(all []marked, known map[int]bool, ids map[string]bool) []marked {
	self := os.Getpid()
	var out []marked
	for _, m := range all {
		if known[m.pid] || known[m.pgid] || ids[m.app+"/"+m.id] || m.ppid == self {
			continue
		}
		out = append(out, m)
	}
	return out
}

// stopStrays sends SIGTERM to each stray (to its process group when it leads one), and
// SIGKILL to those still running after grace. It returns once every one has ended or been
// killed. A process is signalled only while its pid still has the start time scanned, so
// a pid reused meanwhile is left alone.
func (p *Platform) stopStrays(ms []marked, grace time.Duration) {
	signal := func(m marked, sig syscall.Signal) {
		if !running(m.pid, m.start) {
			return
		}
		if m.leads() {
			signalGroup(m.pid, sig)
		} else {
			_ = syscall.Kill(m.pid, sig)
		}
	}
	for _, m := range ms {
		p.log.Warn("stray instance process stopped", "pid", m.pid, "app", m.app, "instance", m.id,
			"reason", "no instance of this data directory has it")
		signal(m, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for _, m := range ms {
		ended, _ := waitEnded(m.pid, m.start, time.Until(deadline))
		if !ended {
			signal(m, syscall.SIGKILL)
			waitEnded(m.pid, m.start, killWait)
		}
		if m.leads() {
			signalGroup(m.pid, syscall.SIGKILL) // what it left in its group goes with it
		}
	}
}

// findStarted returns the process an instance whose start was recorded but not its pid
// (the server died in between) runs: the group leader marked with the instance.
func findStarted(all []marked, app, id string) (marked, bool) {
	for _, m := range all {
		if m.app == app && m.id == id && m.leads() {
			return m, true
		}
	}
	return marked{}, false
}
