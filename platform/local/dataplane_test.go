package local_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/platform/local"
)

// startDataPlane serves a data plane (dataplane.Serve, on its real unix socket) in a data
// directory of its own until the test ends, and returns a client for it.
func startDataPlane(t testing.TB) *dataplane.Client {
	t.Helper()
	dir := t.TempDir()
	runDataPlane(t, dir, 3*time.Second)
	c := dataplane.Dial(dir)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// runDataPlane serves a data plane for dir until the returned stop is called (at the
// latest when the test ends), once it answers; stop fails the test if Serve failed.
func runDataPlane(t testing.TB, dir string, drain time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dataplane.Serve(ctx, dataplane.ServeConfig{Dir: dir, DrainTimeout: drain}) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("data plane: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("data plane did not stop 30s after its context ended")
		}
	}
	t.Cleanup(stop)
	c := dataplane.Dial(dir)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(waitFor)
	for {
		_, err := c.Info(t.Context())
		if err == nil {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("data plane not up: %v", err)
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("data plane: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestDataPlane_ServesWhileNoPlatformRuns is what a SIGKILL of the server leaves: the
// instances and the data plane run on, with nobody managing them. The data plane keeps
// serving by its last table, and the next Platform adopts both without a failed request
// (and without pushing a table before the readiness of the instances it adopted is known).
// A clean stop of the next one then stops the data plane too.
func TestDataPlane_ServesWhileNoPlatformRuns(t *testing.T) {
	dir := t.TempDir()
	c := client(t)
	edge := startDataPlane(t)
	const app = "outlive"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	d := slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100),
	}
	first := start(t, local.Config{DataDir: dir, Edge: edge, KeepOnExit: true})
	apply(t, first, d)
	until(t, first, app, "ready", readyCount(map[string]int{v1.ID: 2}))
	pids := pidsOf(t, first, c, app)
	killOnCleanup(t, pids)
	addr, _ := first.ListenAddrs(app)
	tr := startTraffic(t, "http://"+addr+"/")
	tr.waitAnswered(t, 50, "before the platform stops")

	first.stop() // as if killed: instances and data plane left running
	tr.waitAnswered(t, 50, "while no platform runs")

	next := start(t, local.Config{DataDir: dir, Edge: edge})
	select {
	case <-next.Settled():
	case <-time.After(waitFor):
		t.Fatalf("next platform not settled after %v", waitFor)
	}
	if got, _ := next.ListenAddrs(app); got != addr {
		t.Errorf("next platform reports the listener %q, want the data plane's %q", got, addr)
	}
	o := until(t, next, app, "adopted", readyCount(map[string]int{v1.ID: 2}))
	if len(o.Split.Weights) != 1 || o.Split.Weights[0].Weight != 100 {
		t.Errorf("split in effect after the restart: %+v", o.Split)
	}
	tr.waitAnswered(t, 50, "after the next platform adopted the app")
	tr.check(t, "platform away and back")
	now := pidsOf(t, next, c, app)
	for id, pid := range pids {
		if now[id] != pid {
			t.Errorf("instance %s runs pid %d, want the adopted %d", id, now[id], pid)
		}
	}

	next.stop()
	waitGone(t, now)
	if _, err := edge.Info(t.Context()); err == nil {
		t.Errorf("the data plane still answers after a clean stop of the platform")
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("the app's listener %s still accepts after a clean stop", addr)
	}
}

// TestDataPlane_EntryNobodyWantsIsRemoved: a traffic entry the data plane kept for an app
// the platform's state does not know (removed while the data plane served on) is removed.
func TestDataPlane_EntryNobodyWantsIsRemoved(t *testing.T) {
	edge := startDataPlane(t)
	st, err := edge.Set(t.Context(), "gone", dataplane.Spec{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Listen.Bound == "" {
		t.Fatalf("listener not bound: %+v", st)
	}
	start(t, local.Config{Edge: edge})
	deadline := time.Now().Add(waitFor)
	for {
		conn, err := net.DialTimeout("tcp", st.Listen.Bound, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the unwanted listener %s still accepts", st.Listen.Bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if apps, err := edge.State(t.Context()); err != nil || len(apps) != 0 {
		t.Errorf("data plane state after the removal: %v, %v", apps, err)
	}
}

// TestDataPlane_NewDataPlaneGetsEveryEntryAgain: the data plane stops and a new one takes
// the directory (as dataplane.Supervisor starts one after the old one died): the platform
// notices its new boot word and sets every traffic entry again.
func TestDataPlane_NewDataPlaneGetsEveryEntryAgain(t *testing.T) {
	dir := t.TempDir()
	stop := runDataPlane(t, dir, time.Second)
	edge := dataplane.Dial(dir)
	defer edge.CloseIdleConnections()
	c := client(t)
	const app = "again"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 3)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := start(t, local.Config{Edge: edge})
	apply(t, s, slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: addr}, Revisions: []slipway.Placement{place(v1, 1)}, Split: weights(v1, 100)})
	until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 1}))
	if code, _, err := get(c, "http://"+addr+"/"); err != nil || code != 200 {
		t.Fatalf("GET through the first data plane: %d %v", code, err)
	}
	old, _ := edge.Boot(t.Context())

	stop()
	stop2 := runDataPlane(t, dir, time.Second)
	defer func() {
		s.stop() // before its data plane
		stop2()
	}()
	if b, _ := edge.Boot(t.Context()); b == old {
		t.Fatalf("the new data plane has the old boot word %q", b)
	}
	deadline := time.Now().Add(waitFor)
	for {
		code, _, err := get(c, "http://"+addr+"/")
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app is not served by the new data plane after %v: %d %v", waitFor, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dataPlaneEnv makes the test binary serve a data plane on the directory it names: a data
// plane process of its own, which a test may stop (SIGSTOP) or kill.
const dataPlaneEnv = "LOCAL_TEST_DATAPLANE"

func serveDataPlane(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := dataplane.Serve(ctx, dataplane.ServeConfig{Dir: dir, Version: "test", DrainTimeout: time.Second}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestDataPlane_HungDataPlaneHoldsNothingUp: the data plane process stops answering
// (SIGSTOP: a debugger, a frozen cgroup, a machine swapping) while an instance dies. The
// platform cannot set the new table; it must not hold the app up meanwhile: Observe answers
// at once, and the instance is restarted and probed as it would be otherwise. Once the data
// plane answers again, it gets the table.
func TestDataPlane_HungDataPlaneHoldsNothingUp(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(dataPlaneEnv, dir)
	edge, info, err := dataplane.Supervise(t.Context(), dataplane.LaunchConfig{Dir: dir, Command: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	defer edge.CloseIdleConnections()
	t.Cleanup(func() {
		_ = syscall.Kill(info.PID, syscall.SIGCONT)
		_ = syscall.Kill(info.PID, syscall.SIGKILL)
	})
	c := client(t)
	const app = "hung"
	v1 := revision(app, "v1", slipway.Health{Readiness: fastProbe("/healthz", 1)})
	s := start(t, local.Config{DataDir: dir, Edge: edge})
	apply(t, s, slipway.Desired{App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(v1, 2)}, Split: weights(v1, 100)})
	until(t, s, app, "ready", readyCount(map[string]int{v1.ID: 2}))
	pids := pidsOf(t, s, c, app)
	killOnCleanup(t, pids)

	if err := syscall.Kill(info.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	id := v1.ID + "-0"
	if err := syscall.Kill(pids[id], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The instance is restarted and ready again well before the data plane answers.
	const within = 12 * time.Second
	deadline := time.Now().Add(within)
	var slowest time.Duration
	for {
		t0 := time.Now()
		obs, err := s.Observe(t.Context(), app)
		if err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
		st := obs.Revision(v1.ID)
		if st.Ready() == 2 && len(st.Instances) == 2 && st.Instances[0].Restarts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s not restarted and ready %v after it died, with the data plane hung (slowest Observe %v): %+v",
				id, within, slowest, obs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// From now on nothing waits on the hung data plane.
	for range 20 {
		t0 := time.Now()
		if _, err := s.Observe(t.Context(), app); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("Observe took %v with the data plane hung", d)
		}
		time.Sleep(100 * time.Millisecond) // spread over two seconds of the data plane hung
	}

	if err := syscall.Kill(info.PID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	obs, err := s.Observe(t.Context(), app)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, in := range obs.Revision(v1.ID).Instances {
		want[in.Address] = true
	}
	deadline = time.Now().Add(waitFor)
	for {
		st, err := edge.State(t.Context())
		got := map[string]bool{}
		for _, b := range st[app].Table.Backends[v1.ID] {
			got[b.Addr] = true
		}
		if err == nil && maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the data plane's table after it answers again: %v (%v), want the instances at %v", got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
}
