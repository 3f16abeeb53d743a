package local_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/local"
	"slipway.dev/slipway/slipwaytest"
)

// crashed runs a first server on dir that applies d, waits until want is ready, and ends
// as a crash leaves it (KeepOnExit): every instance keeps running and the state file names
// them. It returns their pids by instance ID; the test's end kills whatever is left.
func crashed(t *testing.T, dir string, d slipway.Desired, want map[string]int) map[string]int {
	t.Helper()
	c := client(t)
	first := start(t, local.Config{DataDir: dir, KeepOnExit: true})
	apply(t, first, d)
	until(t, first, d.App, "ready", readyCount(want))
	pids := pidsOf(t, first, c, d.App)
	first.stop()
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_, _ = syscall.Wait4(pid, nil, syscall.WNOHANG, nil)
		}
	})
	return pids
}

// editState rewrites dir's state file with f.
func editState(t *testing.T, dir string, f func(st map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "instances.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	f(st)
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A server that starts after a crash and finds instances its desired state no longer places
// stops them, even when it decides so before their goroutines ran once: an instance leaves
// the record only once its process is gone.
func TestRun_StopsAdoptedInstancesTheStateNoLongerPlaces(t *testing.T) {
	dir := t.TempDir()
	const app = "unplaced"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	v2 := revision(app, "v2", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	d := slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"}, Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100)}
	pids := crashed(t, dir, d, map[string]int{v1.ID: 2})

	// The crash came after the state file recorded a desired state without v1.
	next := slipway.Desired{App: app, Traffic: d.Traffic, Revisions: []slipway.Placement{place(v2, 1)}, Split: weights(v2, 100)}
	editState(t, dir, func(st map[string]any) {
		b, _ := json.Marshal(next)
		var m any
		_ = json.Unmarshal(b, &m)
		st["apps"] = []any{m}
	})

	second := start(t, local.Config{DataDir: dir})
	waitGone(t, pids)
	until(t, second, app, "v2 alone", func(o slipway.Observed) bool {
		return len(o.Revisions) == 1 && readyCount(map[string]int{v2.ID: 1})(o)
	})
}

// Processes marked as instances of the data directory that nothing on record accounts for
// are stopped when a server starts; unmarked processes and those of another data directory
// are left alone.
func TestRun_StopsStrayInstanceProcesses(t *testing.T) {
	dir := t.TempDir()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	port := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	stray := detached(t, "PORT="+port(), "SLIPWAY_INSTANCE_DATA="+abs, "SLIPWAY_INSTANCE=web/0123abcd-0")
	other := detached(t, "PORT="+port(), "SLIPWAY_INSTANCE_DATA="+abs+"-other", "SLIPWAY_INSTANCE=web/0123abcd-0")
	plain := detached(t, "PORT="+port())

	s := start(t, local.Config{DataDir: dir})
	select {
	case <-s.Settled():
	case <-time.After(waitFor):
		t.Fatal("Settled not closed with nothing adopted")
	}
	waitGone(t, map[string]int{"stray": stray})
	for name, pid := range map[string]int{"another data directory's": other, "unmarked": plain} {
		if gone(pid) {
			t.Errorf("the %s process %d was stopped", name, pid)
		}
	}
}

// detached starts the test app with env in a session of its own, not as this process's
// child (as an instance of a server that was killed is), and returns its pid once it
// listens.
func detached(t *testing.T, env ...string) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `setsid "$0" >/dev/null 2>&1 </dev/null & echo $!`, appBin)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("pid of the detached app: %q", out)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	var port string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PORT="); ok {
			port = v
		}
	}
	c := client(t)
	slipwaytest.Eventually(t, waitFor, fmt.Sprintf("the detached app (pid %d) to answer", pid), func() bool {
		code, _, err := get(c, "http://127.0.0.1:"+port+"/")
		return err == nil && code == http.StatusOK
	})
	return pid
}

// A server killed after it recorded an instance as starting, but before it recorded the
// pid, leaves a process that the next server finds by its marks and adopts: it is neither
// orphaned nor started twice. The next server is settled (and decides) only once the
// adopted instance's readiness is known.
func TestRun_AdoptsAnInstanceRecordedAsStarting(t *testing.T) {
	dir := t.TempDir()
	c := client(t)
	const app = "starting"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	d := slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"}, Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)}
	pids := crashed(t, dir, d, map[string]int{v1.ID: 1})
	editState(t, dir, func(st map[string]any) {
		for _, r := range st["instances"].([]any) {
			rec := r.(map[string]any)
			rec["pid"], rec["startTime"], rec["starting"] = 0, 0, true
		}
	})

	second := start(t, local.Config{DataDir: dir})
	select {
	case <-second.Settled():
	case <-time.After(waitFor):
		t.Fatal("Settled not closed")
	}
	obs, err := second.Observe(t.Context(), app)
	if err != nil {
		t.Fatal(err)
	}
	if !readyCount(map[string]int{v1.ID: 1})(obs) {
		t.Fatalf("settled with the adopted instance not ready: %+v", obs.Revisions)
	}
	if now := pidsOf(t, second, c, app); now[v1.ID+"-0"] != pids[v1.ID+"-0"] {
		t.Errorf("instance runs pid %d after the restart, want the adopted %d", now[v1.ID+"-0"], pids[v1.ID+"-0"])
	}
}

// An instance recorded as draining is stopped by the server that adopts it, and never
// takes traffic from it; a new instance takes its place.
func TestRun_DrainingRecordIsStoppedWithoutTraffic(t *testing.T) {
	dir := t.TempDir()
	c := client(t)
	const app = "draining"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	d := slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"}, Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100)}
	pids := crashed(t, dir, d, map[string]int{v1.ID: 2})
	leaving := v1.ID + "-1"
	editState(t, dir, func(st map[string]any) {
		for _, r := range st["instances"].([]any) {
			if rec := r.(map[string]any); rec["id"] == leaving {
				rec["draining"] = true
			}
		}
	})

	second := start(t, local.Config{DataDir: dir})
	<-second.Settled()
	var main string
	slipwaytest.Eventually(t, waitFor, "a listener", func() bool {
		main, _ = second.ListenAddrs(app)
		return main != ""
	})
	deadline := time.Now().Add(waitFor)
	for !gone(pids[leaving]) {
		code, body, err := get(c, "http://"+main+"/")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET via the listener: %d %q %v", code, body, err)
		}
		if a, err := parseAnswer(body); err == nil && a.pid == pids[leaving] {
			t.Fatalf("the instance recorded as draining (pid %d) answered a request", a.pid)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance recorded as draining (pid %d) still runs", pids[leaving])
		}
	}
	until(t, second, app, "replaced", readyCount(map[string]int{v1.ID: 2}))
	now := pidsOf(t, second, c, app)
	if kept := v1.ID + "-0"; now[kept] != pids[kept] {
		t.Errorf("instance %s runs pid %d, want the adopted %d", kept, now[kept], pids[kept])
	}
	for id, pid := range now {
		if id != v1.ID+"-0" && pid == pids[leaving] {
			t.Errorf("instance %s runs pid %d, the process recorded as draining", id, pid)
		}
	}
}
