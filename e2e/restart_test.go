package e2e

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/dataplane"
)

// instancePIDs returns the pid behind each live instance of app, by instance address.
func (c *cluster) instancePIDs(app string) map[string]int {
	c.t.Helper()
	out := map[string]int{}
	for _, l := range c.status(app).Live {
		for _, in := range l.List {
			out[in.Address] = pidListeningOn(c.t, in.Address)
		}
	}
	return out
}

// serverPID reads the pid of the server serving the data directory from DATA/server.pid
// (0 when there is none).
// dataPlanePID returns the pid of the data directory's data plane process.
func (c *cluster) dataPlanePID() int {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.data, dataplane.PIDName))
	if err != nil {
		c.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		c.t.Fatal(err)
	}
	return pid
}

func (c *cluster) serverPID() int {
	b, err := os.ReadFile(filepath.Join(c.data, "server.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// restartInPlace sends SIGHUP to the server and waits until another process serves the
// data directory and the old one has exited 0. From then on the cluster stops the new server
// by its pid.
func (c *cluster) restartInPlace() (oldPID, newPID int) {
	c.t.Helper()
	oldPID = c.srv.Process.Pid
	if got := c.serverPID(); got != oldPID {
		c.t.Fatalf("server.pid says %d, want the server's pid %d", got, oldPID)
	}
	if err := c.srv.Process.Signal(syscall.SIGHUP); err != nil {
		c.t.Fatal(err)
	}
	// Whatever happens below, the server that took over is stopped when the test ends.
	c.t.Cleanup(func() {
		if pid := c.serverPID(); pid != oldPID && pid != 0 {
			c.stopPID(pid)
		}
	})
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Fatalf("the old server did not exit 0 after handing over: %v", err)
		}
	case <-time.After(60 * time.Second):
		c.t.Fatal("the old server still runs 60s after SIGHUP")
	}
	c.srv = nil
	deadline := time.Now().Add(10 * time.Second)
	for newPID = c.serverPID(); newPID == oldPID || newPID == 0 || !alive(newPID); newPID = c.serverPID() {
		if time.Now().After(deadline) {
			c.t.Fatalf("after the restart server.pid says %d (old server %d)", newPID, oldPID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return oldPID, newPID
}

// killAndStart kills the server with SIGKILL (its instances keep running) and starts a new
// one on the same data directory and address, which adopts them. The cluster needs a
// fixed listen address for its clients to find the new server.
func (c *cluster) killAndStart() {
	c.t.Helper()
	pid := c.serverPID()
	if pid == 0 || !alive(pid) {
		c.t.Fatal("no server to kill")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	if c.srv != nil {
		<-c.done
		c.srv = nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			c.t.Fatalf("server %d still runs 60s after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // clients meet a server that is gone, not one back at once
	c.start()
}

// stopPID interrupts a server that is not the test's child and waits until it is gone.
func (c *cluster) stopPID(pid int) {
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			c.t.Errorf("server %d did not stop within 30s", pid)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.t.Failed() {
		if b, err := os.ReadFile(filepath.Join(c.data, "server.log")); err == nil {
			c.t.Logf("server log:\n%s", lastLines(string(b), 60))
		}
	}
}

// alive reports whether pid is a running process (not a zombie nobody reaped).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) <= i+2 || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// samePIDs fails the test when an instance address of before is served by another process
// (or none) now.
func samePIDs(t *testing.T, before, now map[string]int) {
	t.Helper()
	for addr, pid := range before {
		if now[addr] != pid {
			t.Errorf("instance %s: pid %d after the restart, want %d (not restarted)", addr, now[addr], pid)
		}
	}
}

func TestLocal_RestartInPlaceUnderLoad(t *testing.T) {
	strategy := `    canary:
      steps:
        - setWeight: 25
        - pause: {duration: 4s}
        - setWeight: 75
        - pause: {duration: 1s}`
	rollout(t, "restart in place", strategy, func(c *cluster, listen string) {
		c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 3))
		s := c.waitFor("web", "canary at 25% with its instance ready", func(s status) bool {
			if s.Rollout == nil || s.Rollout.Weight != 25 {
				return false
			}
			for _, l := range s.Live {
				if l.Version == "v2" && l.Ready == 1 {
					return true
				}
			}
			return false
		})
		rolloutID := s.Rollout.ID
		before := c.instancePIDs("web")
		if len(before) != 4 {
			t.Fatalf("want 3 stable and 1 canary instance before the restart, have %v", before)
		}

		oldPID, newPID := c.restartInPlace()
		t.Logf("server restarted in place: pid %d -> %d", oldPID, newPID)
		now := c.status("web")
		if now.Rollout == nil || now.Rollout.ID != rolloutID {
			t.Fatalf("rollout after the restart: %+v, want %s carried on", now.Rollout, rolloutID)
		}
		for _, l := range now.Live {
			for _, in := range l.List {
				if in.Restarts != 0 {
					t.Errorf("instance %s counts %d restarts after the server restart", in.ID, in.Restarts)
				}
			}
		}
		samePIDs(t, before, c.instancePIDs("web"))

		// The rollout started before the restart completes after it.
		if _, code := c.cli("status", "web", "--wait", "--timeout", "60s"); code != 0 {
			t.Fatalf("rollout did not complete after the restart: exit %d", code)
		}
		if s := c.status("web"); s.Stable == nil || s.Stable.Version != "v2" {
			t.Fatalf("stable after the restart and the rollout: %+v", s.Stable)
		}
	})
}

func TestLocal_RestartInPlaceTwice(t *testing.T) {
	strategy := "    rolling: {maxSurge: 1, maxUnavailable: 0}"
	rollout(t, "two restarts in place", strategy, func(c *cluster, listen string) {
		before := c.instancePIDs("web")
		c.restartInPlace()
		// The restarted server can restart again: it has the sockets it inherited.
		pid := c.serverPID()
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for c.serverPID() == pid || alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("second restart: server %d still serves after 60s", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		samePIDs(t, before, c.instancePIDs("web"))
		// The data directory's lock went down with the sockets: a second server is refused
		// and names the one serving.
		out, err := exec.Command(bin, "server", "--platform", "local", "--data", c.data, "--listen", "127.0.0.1:0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "in use") || !strings.Contains(string(out), "pid "+strconv.Itoa(c.serverPID())) {
			t.Errorf("a second server on the data directory: %v\n%s; want a refusal naming pid %d", err, out, c.serverPID())
		}
		// The server that took over twice still deploys.
		c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 3), "--wait", "--timeout", "60s")
	})
}

// TestLocal_ServerKilledUnderLoadFailsNoRequest: SIGKILL the server under load, leave it
// dead for a while, start it again and roll out: no request fails at any point, because
// nothing on a request's path belongs to the server (the data plane process and the
// instances outlive it). The new server adopts the same instances and the same data plane;
// a clean stop then stops them all.
func TestLocal_ServerKilledUnderLoadFailsNoRequest(t *testing.T) {
	c := &cluster{t: t, data: t.TempDir(), dir: t.TempDir()}
	c.start("--log-level", "info")
	t.Cleanup(c.stop)
	listen := freePort(t)
	c.must("apply", "-f", c.appFile("web", listen, "v1", "    rolling: {maxSurge: 1, maxUnavailable: 0}", 3), "--wait", "--timeout", "60s")
	before := c.instancePIDs("web")
	plane := c.dataPlanePID()
	t.Cleanup(func() { // if the test fails half-way, leave no instance behind
		for _, pid := range before {
			if alive(pid) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	})
	l := startLoad(t, "http://"+listen+"/", loadRate)
	time.Sleep(time.Second) // a load window: a second of traffic before the kill

	killed := time.Now()
	if err := c.srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
	c.srv = nil
	for addr, pid := range before {
		if !alive(pid) {
			t.Fatalf("instance %s (pid %d) did not survive SIGKILL of the server", addr, pid)
		}
	}
	if !alive(plane) {
		t.Fatalf("the data plane (pid %d) did not survive SIGKILL of the server", plane)
	}
	// No server at all for a while: the data plane keeps serving.
	beforeGap := l.total.Load() - l.failed.Load()
	time.Sleep(1500 * time.Millisecond) // the gap under test: no server at all for 1.5s
	servedInGap := l.total.Load() - l.failed.Load() - beforeGap
	if servedInGap == 0 {
		t.Errorf("no request answered while no server ran")
	}

	c.start("--log-level", "info")
	c.waitFor("web", "3 adopted instances ready", func(s status) bool { return len(s.Live) == 1 && s.Live[0].Ready == 3 })
	t.Logf("a new server runs with the adopted instances ready %v after the SIGKILL", time.Since(killed).Round(time.Millisecond))
	samePIDs(t, before, c.instancePIDs("web"))
	if got := c.dataPlanePID(); got != plane {
		t.Errorf("data plane pid %d after the restart, want the same process %d", got, plane)
	}
	for _, l := range c.status("web").Live {
		for _, in := range l.List {
			if in.Restarts != 0 {
				t.Errorf("adopted instance %s counts %d restarts", in.ID, in.Restarts)
			}
		}
	}
	// The new server carries on: a rollout under the same load.
	c.must("apply", "-f", c.appFile("web", listen, "v2", "    rolling: {maxSurge: 1, maxUnavailable: 0}", 3), "--wait", "--timeout", "60s")
	time.Sleep(500 * time.Millisecond) // a load window: traffic on v2 after the rollout
	total, failed, byVer := l.report(t, "server SIGKILL")
	t.Logf("%d requests answered while no server ran; %d in all, %d failed, by version %v", servedInGap, total, failed, byVer)
	if failed != 0 {
		t.Errorf("%d of %d requests failed around a SIGKILL of the server", failed, total)
	}
	if byVer["v2"] == 0 {
		t.Errorf("no request reached v2 after the restart: %v", byVer)
	}

	// The proxies' series (kept by the data plane) are served on the server's /metrics.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.server+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken(t, c.data))
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("GET /metrics: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `slipway_proxy_requests_total{app="web"`) {
			t.Errorf("/metrics has no proxy series of web:\n%s", lastLines(string(b), 10))
		}
	}

	// The new server owns them: a clean stop stops the instances and the data plane.
	now := c.instancePIDs("web")
	c.stop()
	deadline := time.Now().Add(30 * time.Second)
	for addr, pid := range now {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("instance %s (pid %d) outlived the server that adopted it", addr, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for alive(plane) {
		if time.Now().After(deadline) {
			t.Fatalf("the data plane (pid %d) outlived a clean stop of the server", plane)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLocal_RestartInPlaceFailsAndTheServerCarriesOn(t *testing.T) {
	// The server runs from its own copy of the binary, which is then replaced by one that
	// cannot start (a broken upgrade): the new server never becomes ready.
	exe := filepath.Join(t.TempDir(), "slipway")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, data: t.TempDir(), dir: t.TempDir()}
	orig := bin
	bin = exe
	c.start()
	bin = orig
	t.Cleanup(c.stop)

	strategy := "    rolling: {maxSurge: 1, maxUnavailable: 0}"
	listen := freePort(t)
	c.must("apply", "-f", c.appFile("web", listen, "v1", strategy, 2), "--wait", "--timeout", "60s")
	before := c.instancePIDs("web")
	l := startLoad(t, "http://"+listen+"/", loadRate)
	time.Sleep(500 * time.Millisecond) // a load window: traffic before the failed restart

	broken := exe + ".new"
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho broken upgrade >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, exe); err != nil {
		t.Fatal(err)
	}
	if err := c.srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(c.data, "server.log")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "restart in place failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed restart logged after 60s:\n%s", lastLines(string(b), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-c.done:
		t.Fatalf("the server exited after a failed restart: %v", err)
	default:
	}
	if got := c.serverPID(); got != c.srv.Process.Pid {
		t.Errorf("server.pid says %d after a failed restart, want %d", got, c.srv.Process.Pid)
	}
	samePIDs(t, before, c.instancePIDs("web"))

	// The engine runs again: a rollout goes through, and the platform starts processes again.
	c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 2), "--wait", "--timeout", "60s")
	time.Sleep(500 * time.Millisecond) // a load window: traffic on v2 after the rollout
	total, failed, byVer := l.report(t, "failed restart")
	if failed != 0 {
		t.Errorf("%d of %d requests failed around a failed restart", failed, total)
	}
	if byVer["v2"] == 0 {
		t.Errorf("no request reached v2 after the failed restart: %v", byVer)
	}
}
