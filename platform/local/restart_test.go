package local_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/local"
	"slipway.dev/slipway/slipwaytest"
)

func TestRun_ExitStopsEveryProcessAndGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := start(t, local.Config{})
	c := client(t)
	const app = "exit"
	v1, v2 := revision(app, "v1", slipway.Health{}), revision(app, "v2", slipway.Health{Liveness: fastProbe("/live", 3)})
	apply(t, s, slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0", Preview: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 2), place(v2, 1)}, Split: weights(v1, 100), Preview: v2.ID,
	})
	until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 2, v2.ID: 1}))
	pids := pidsOf(t, s, c, app)
	main, _ := s.ListenAddrs(app)
	if code, _, err := get(c, "http://"+main+"/"); err != nil || code != http.StatusOK {
		t.Fatalf("GET via the listener: %d %v", code, err)
	}

	s.stop()
	for id, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d of instance %s outlived Run", pid, id)
		}
	}
	if _, _, err := get(c, "http://"+main+"/"); err == nil {
		t.Errorf("listener %s still answers after Run returned", main)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines outlived Run: %v", err)
	}
	var st struct {
		Instances []json.RawMessage `json:"instances"`
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "instances.json"))
	if err != nil || json.Unmarshal(b, &st) != nil || len(st.Instances) != 0 {
		t.Errorf("state after a clean exit: %v %s; want no instances", err, b)
	}
}

func TestRun_AdoptsInstancesAfterACrash(t *testing.T) {
	dir := t.TempDir()
	c := client(t)
	const app = "adopt"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	d := slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 3)}, Split: weights(v1, 100),
	}

	// The first server runs three instances and "crashes": Run ends without stopping them.
	first := start(t, local.Config{DataDir: dir, KeepOnExit: true})
	apply(t, first, d)
	until(t, first, app, "ready", readyCount(map[string]int{v1.ID: 3}))
	pids := pidsOf(t, first, c, app)
	first.stop()
	t.Cleanup(func() { // whatever happens below, leave no process behind
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_, _ = syscall.Wait4(pid, nil, syscall.WNOHANG, nil)
		}
	})
	for id, pid := range pids {
		if gone(pid) {
			t.Fatalf("instance %s (pid %d) did not survive the crash", id, pid)
		}
	}

	// One process dies while no server runs: it must be replaced, not adopted.
	lost := v1.ID + "-2"
	if err := syscall.Kill(pids[lost], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.Wait4(pids[lost], nil, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Another pid now names a different process: a record with a wrong start time must not
	// be adopted. Rewrite the state so instance -1's record carries a wrong start time.
	mangled := v1.ID + "-1"
	rewriteState(t, dir, func(rec map[string]any) {
		if rec["id"] == mangled {
			rec["startTime"] = rec["startTime"].(float64) + 1
		}
	})
	// (Its process keeps running, as a stranger's would; the cleanup above stops it.)

	// The second server adopts the survivor without being told anything, serves it again,
	// and replaces the two others.
	second := start(t, local.Config{DataDir: dir})
	obs := until(t, second, app, "adopted and replaced", readyCount(map[string]int{v1.ID: 3}))
	now := pidsOf(t, second, c, app)
	kept := v1.ID + "-0"
	if now[kept] != pids[kept] {
		t.Errorf("instance %s runs pid %d after the restart, want the adopted pid %d", kept, now[kept], pids[kept])
	}
	for _, id := range []string{lost, mangled} {
		if now[id] == 0 || now[id] == pids[id] {
			t.Errorf("instance %s: pid %d after the restart, want a new process (was %d)", id, now[id], pids[id])
		}
	}
	for _, in := range obs.Revision(v1.ID).Instances {
		if in.ID == kept && in.Restarts != 0 {
			t.Errorf("adopted instance counts %d restarts", in.Restarts)
		}
	}
	main, _ := second.ListenAddrs(app)
	if code, body, err := get(c, "http://"+main+"/"); err != nil || code != http.StatusOK || !strings.HasPrefix(body, "v1 ") {
		t.Fatalf("GET via the restored listener: %d %q %v", code, body, err)
	}

	// Re-applying what the first server was told changes nothing.
	apply(t, second, d)
	// The second pass that finishes from now on began after the apply: it saw the re-applied
	// state, and would have acted on it.
	passes := second.Passes(app)
	slipwaytest.Eventually(t, waitFor, "a supervisor pass after the re-apply", func() bool { return second.Passes(app) >= passes+2 })
	if again := pidsOf(t, second, c, app); !maps.Equal(again, now) {
		t.Errorf("re-apply after adoption changed processes: %v, then %v", now, again)
	}

	// An adopted process that dies is noticed (it is not the server's child) and restarted.
	if err := syscall.Kill(now[kept], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	until(t, second, app, "adopted instance restarted", func(o slipway.Observed) bool {
		for _, in := range o.Revision(v1.ID).Instances {
			if in.ID == kept {
				return in.Restarts == 1 && in.Ready
			}
		}
		return false
	})

	final := pidsOf(t, second, c, app)
	second.stop()
	waitGone(t, final)
}

// rewriteState edits every instance record of dir's state file with f.
func rewriteState(t testing.TB, dir string, f func(map[string]any)) {
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
	for _, r := range st["instances"].([]any) {
		f(r.(map[string]any))
	}
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// An engine that starts at the same time as the platform may apply before Run has read the
// state file; that must not overwrite the file and lose the instances to adopt.
func TestRun_AdoptsWhenAppliedBeforeRun(t *testing.T) {
	dir := t.TempDir()
	c := client(t)
	const app = "early"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	d := slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100),
	}
	first := start(t, local.Config{DataDir: dir, KeepOnExit: true})
	apply(t, first, d)
	until(t, first, app, "ready", readyCount(map[string]int{v1.ID: 2}))
	pids := pidsOf(t, first, c, app)
	first.stop()
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_, _ = syscall.Wait4(pid, nil, syscall.WNOHANG, nil)
		}
	})

	p := local.New(local.Config{DataDir: dir, DrainTimeout: 3 * time.Second, StopGrace: 3 * time.Second})
	apply(t, p, d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	until(t, p, app, "adopted", readyCount(map[string]int{v1.ID: 2}))
	if now := pidsOf(t, p, c, app); !maps.Equal(now, pids) {
		t.Errorf("instances after an apply before Run: %v, want the adopted %v", now, pids)
	}
	stop()
	waitGone(t, pids)
}
