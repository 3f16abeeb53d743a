package local_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/local"
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
