package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/platform/local"
	"slipway.dev/slipway/slipwaytest"
)

// traffic sends GET requests to url from a few goroutines until stopped, half of them on
// new connections, and counts the failures.
type traffic struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	first      []string
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func startTraffic(t testing.TB, url string) *traffic {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel}
	for i := range 4 {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 0}}
		tr.wg.Go(func() {
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				code, body, err := get(c, url)
				if err == nil && code == http.StatusOK {
					tr.ok.Add(1)
				} else {
					tr.failed.Add(1)
					tr.mu.Lock()
					if len(tr.first) < 5 {
						tr.first = append(tr.first, body+" "+errString(err))
					}
					tr.mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond) // paces the load: steady traffic, not a busy loop
			}
		})
	}
	t.Cleanup(tr.stop)
	return tr
}

// waitAnswered waits until n more requests were answered: traffic that spans what happens
// meanwhile.
func (tr *traffic) waitAnswered(t testing.TB, n int64, what string) {
	t.Helper()
	target := tr.ok.Load() + n
	slipwaytest.Eventually(t, waitFor, fmt.Sprintf("%d requests answered %s", n, what), func() bool { return tr.ok.Load() >= target })
}

func (tr *traffic) stop() {
	tr.cancel()
	tr.wg.Wait()
}

// check stops the traffic and fails the test on any failed request.
func (tr *traffic) check(t testing.TB, what string) {
	t.Helper()
	tr.stop()
	t.Logf("%s: %d requests answered, %d failed", what, tr.ok.Load(), tr.failed.Load())
	if tr.ok.Load() == 0 {
		t.Errorf("%s: no request was answered", what)
	}
	if n := tr.failed.Load(); n > 0 {
		t.Errorf("%s: %d requests failed; first: %q", what, n, tr.first)
	}
}

// killOnCleanup kills the process groups of pids when the test ends, whatever happened.
func killOnCleanup(t testing.TB, pids map[string]int) {
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_, _ = syscall.Wait4(pid, nil, syscall.WNOHANG, nil)
		}
	})
}

func TestHandover_NextPlatformTakesOverUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	c := client(t)
	const app = "handover"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	d := slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0", Preview: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 3)}, Split: weights(v1, 100), Preview: v1.ID,
	}
	edge := startDataPlane(t)
	old := start(t, local.Config{DataDir: dir, Edge: edge})
	apply(t, old, d)
	until(t, old, app, "ready", readyCount(map[string]int{v1.ID: 3}))
	pids := pidsOf(t, old, c, app)
	killOnCleanup(t, pids)
	mainAddr, previewAddr := old.ListenAddrs(app)
	tr := startTraffic(t, "http://"+mainAddr+"/")
	tr.waitAnswered(t, 50, "before the handover")

	if err := old.Handover(); err != nil {
		t.Fatalf("Handover: %v", err)
	}
	recs := stateOf(t, dir)
	if len(recs) != 3 {
		t.Errorf("state written for the handover has %d instances, want 3", len(recs))
	}
	for _, r := range recs {
		if !r.Ready || r.PID != pids[r.ID] {
			t.Errorf("handover record %+v: want ready with pid %d", r, pids[r.ID])
		}
	}
	next := start(t, local.Config{DataDir: dir, Edge: edge, StartHeld: true})
	select {
	case <-next.Settled():
	case <-time.After(waitFor):
		t.Fatalf("the next platform has not settled after %v", waitFor)
	}
	if m, p := next.ListenAddrs(app); m != mainAddr || p != previewAddr {
		t.Errorf("next platform reports the listeners %s and %s, want the data plane's %s and %s", m, p, mainAddr, previewAddr)
	}

	// Both serve for a while; then the old one exits, leaving every instance running.
	tr.waitAnswered(t, 50, "while both platforms run")
	old.stop()
	for id, pid := range pids {
		if gone(pid) {
			t.Fatalf("instance %s (pid %d) did not outlive the held platform", id, pid)
		}
	}

	// Still held: a process that ends is not restarted until Resume.
	victim := v1.ID + "-2"
	if err := syscall.Kill(pids[victim], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	until(t, next, app, "the killed instance out of the table", func(o slipway.Observed) bool {
		return o.Revision(v1.ID).Ready() == 2
	})
	slipwaytest.Eventually(t, waitFor, "the killed instance held back from a restart", func() bool { return next.HeldBack() == 1 })
	if o, _ := next.Observe(t.Context(), app); o.Revision(v1.ID).Ready() != 2 {
		t.Errorf("a held platform brought the killed instance back: %+v", o)
	}
	next.Resume()
	until(t, next, app, "the killed instance replaced after Resume", readyCount(map[string]int{v1.ID: 3}))
	tr.check(t, "handover")

	now := pidsOf(t, next, c, app)
	for id, pid := range pids {
		if id != victim && now[id] != pid {
			t.Errorf("instance %s runs pid %d after the handover, want %d (no restart)", id, now[id], pid)
		}
	}
	if now[victim] == pids[victim] {
		t.Errorf("instance %s was not replaced", victim)
	}
	if code, body, err := get(c, "http://"+previewAddr+"/"); err != nil || code != http.StatusOK {
		t.Errorf("preview listener after the handover: %d %q %v", code, body, err)
	}
	next.stop()
	waitGone(t, now)
}

func TestHandover_ResumeWhenNobodyTakesOver(t *testing.T) {
	c := client(t)
	const app = "resume"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	s := start(t, local.Config{Edge: startDataPlane(t)})
	apply(t, s, slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100),
	})
	until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 2}))
	pids := pidsOf(t, s, c, app)
	killOnCleanup(t, pids)
	mainAddr, _ := s.ListenAddrs(app)
	tr := startTraffic(t, "http://"+mainAddr+"/")

	if err := s.Handover(); err != nil {
		t.Fatalf("Handover: %v", err)
	}
	// The next server never comes.
	// Held: scaling up starts nothing.
	apply(t, s, slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 3)}, Split: weights(v1, 100),
	})
	slipwaytest.Eventually(t, waitFor, "the new instance held back from starting", func() bool { return s.HeldBack() == 1 })
	if o, _ := s.Observe(t.Context(), app); o.Revision(v1.ID).Ready() != 2 {
		t.Errorf("a held platform started an instance: %+v", o)
	}
	s.Resume()
	until(t, s, app, "scaled up after Resume", readyCount(map[string]int{v1.ID: 3}))
	tr.check(t, "failed handover")
	now := pidsOf(t, s, c, app)
	for id, pid := range pids {
		if now[id] != pid {
			t.Errorf("instance %s runs pid %d after Resume, want %d", id, now[id], pid)
		}
	}
	// Not held any more: the end of Run stops everything.
	s.stop()
	waitGone(t, now)
}

func TestHandover_NeedsADataDirectoryAndADataPlane(t *testing.T) {
	for name, cfg := range map[string]local.Config{
		"no data directory":  {},
		"traffic in-process": {DataDir: t.TempDir()},
	} {
		p := local.New(cfg)
		err := p.Handover()
		var se *slipway.Error
		if !errors.As(err, &se) || se.Code != slipway.EINVALID {
			t.Errorf("%s: Handover: %v, want EINVALID", name, err)
		}
	}
}

// record is the part of an instance record of the state file the tests read.
type record struct {
	ID    string `json:"id"`
	PID   int    `json:"pid"`
	Ready bool   `json:"ready"`
}

// stateOf reads the instance records of dir's state file.
func stateOf(t testing.TB, dir string) []record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "instances.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Instances []record `json:"instances"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Instances
}

// TestHandover_ResumeSetsItsTablesAgain: a restart in place that fails late may leave the
// next server's tables in effect; the old Platform, resumed, sets its own again even though
// its desired state did not change.
func TestHandover_ResumeSetsItsTablesAgain(t *testing.T) {
	const app = "again"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	edge := startDataPlane(t)
	s := start(t, local.Config{Edge: edge})
	apply(t, s, slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100),
	})
	until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 2}))
	backends := func() int {
		st, err := edge.State(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(st[app].Table.Backends[v1.ID])
	}
	slipwaytest.Eventually(t, waitFor, "both instances in the data plane's table", func() bool { return backends() == 2 })
	if err := s.Handover(); err != nil {
		t.Fatalf("Handover: %v", err)
	}
	// The next server set another table, then the restart failed.
	st, err := edge.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cur := st[app]
	cur.Table.Backends[v1.ID] = cur.Table.Backends[v1.ID][:1]
	if _, err := edge.Set(t.Context(), app, dataplane.Spec{Table: cur.Table, Listen: cur.Listen.Addr}); err != nil {
		t.Fatal(err)
	}
	if backends() != 1 {
		t.Fatal("the next server's table did not take")
	}
	s.Resume()
	slipwaytest.Eventually(t, waitFor, "the resumed platform's table with both instances", func() bool { return backends() == 2 })
}
