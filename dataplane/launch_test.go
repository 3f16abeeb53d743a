package dataplane_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/slipwaytest"
)

// envServe makes the test binary serve a data plane on the directory it names (Launch's
// Command in these tests), or exit at once with "fail".
const envServe = "DATAPLANE_TEST_SERVE"

func TestMain(m *testing.M) {
	switch dir := os.Getenv(envServe); dir {
	case "":
		os.Exit(m.Run())
	case "fail":
		fmt.Fprintln(os.Stderr, "cannot serve: told to fail")
		os.Exit(3)
	case "other-protocol":
		dataplane.SetServeProtocol(dataplane.Protocol + 1)
		if err := dataplane.Serve(context.Background(), dataplane.ServeConfig{Dir: os.Getenv(envServe + "_DIR")}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		if err := dataplane.Serve(context.Background(), dataplane.ServeConfig{Dir: dir, Version: "child"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// launchChild launches a data plane for dir: this test binary, serving it (TestMain). It is
// killed when the test ends.
func launchChild(t *testing.T, dir string) (*dataplane.Client, dataplane.Info) {
	t.Helper()
	t.Setenv(envServe, dir)
	c, info, err := dataplane.Launch(t.Context(), dataplane.LaunchConfig{Dir: dir, Command: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.CloseIdleConnections()
		_ = syscall.Kill(info.PID, syscall.SIGKILL)
	})
	return c, info
}

func TestLaunch_StartsFindsAndStops(t *testing.T) {
	dir := t.TempDir()
	c, info := launchChild(t, dir)
	if info.PID == os.Getpid() || info.Version != "child" {
		t.Fatalf("launched %+v: want a process of its own", info)
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", info.PID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), dataplane.EnvMark+"=") {
		t.Errorf("the data plane process is not marked with %s", dataplane.EnvMark)
	}
	// In a session of its own: a signal to this process group does not reach it.
	if sid, err := syscall.Getpgid(info.PID); err != nil || sid != info.PID {
		t.Errorf("data plane process group %d (%v), want its own (%d)", sid, err, info.PID)
	}

	// A second Launch finds it running.
	c2, info2, err := dataplane.Launch(t.Context(), dataplane.LaunchConfig{Dir: dir, Command: []string{"false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseIdleConnections()
	if info2.PID != info.PID {
		t.Errorf("second Launch: pid %d, want the running %d", info2.PID, info.PID)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/" + dataplane.PIDName); err == nil {
		t.Errorf("the pid file outlived the data plane")
	}
}

func TestLaunch_ReportsAFailedStart(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envServe, "fail")
	_, _, err := dataplane.Launch(t.Context(), dataplane.LaunchConfig{Dir: dir, Command: []string{os.Args[0]}})
	if err == nil || !strings.Contains(err.Error(), "told to fail") {
		t.Errorf("Launch of a data plane that exits at once: %v, want its log in the error", err)
	}
}

// TestSupervisor_StartsANewDataPlaneWhenItDies: SIGKILL the data plane; Boot starts a new
// one, with a new boot word.
func TestSupervisor_StartsANewDataPlaneWhenItDies(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envServe, dir)
	s, info, err := dataplane.Supervise(t.Context(), dataplane.LaunchConfig{Dir: dir, Command: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseIdleConnections()
	pids := []int{info.PID}
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if b, err := s.Boot(t.Context()); err != nil || b != info.Boot || b == "" {
		t.Fatalf("Boot = %q, %v; want %q", b, err, info.Boot)
	}
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// This process started it, so it hears of its end without asking.
	select {
	case <-s.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("Changed did not fire 10s after the data plane this process started was killed")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := s.Boot(t.Context())
		if err == nil && b != info.Boot {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new data plane 15s after the first was killed: %q, %v", b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	now, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, now.PID)
	if now.PID == info.PID {
		t.Errorf("the new data plane has the old pid %d", now.PID)
	}
}

// TestServe_StopsWhenItsDataDirectoryIsDeleted: a data plane left serving by a killed server
// whose data directory is then deleted and made again (rm -rf, then a new server) stops,
// so that it does not hold the apps' ports with its old tables; and it leaves the socket
// and pid file of the data plane that serves the new directory alone.
func TestServe_StopsWhenItsDataDirectoryIsDeleted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envServe, dir)
	launch := func() (*dataplane.Client, dataplane.Info) {
		t.Helper()
		c, info, err := dataplane.Launch(t.Context(), dataplane.LaunchConfig{Dir: dir, Command: []string{os.Args[0]}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.CloseIdleConnections()
			_ = syscall.Kill(info.PID, syscall.SIGKILL)
		})
		return c, info
	}
	old, oldInfo := launch()
	st, err := old.Set(t.Context(), "web", dataplane.Spec{Listen: "127.0.0.1:0"})
	if err != nil || st.Listen.Bound == "" {
		t.Fatalf("Set: %+v, %v", st, err)
	}
	addr := st.Listen.Bound

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, info := launch()
	if info.PID == oldInfo.PID {
		t.Fatalf("Launch on the new directory found the old data plane (pid %d)", info.PID)
	}
	slipwaytest.Eventually(t, 15*time.Second, fmt.Sprintf("the data plane of the deleted directory (pid %d) to stop", oldInfo.PID), func() bool {
		return syscall.Kill(oldInfo.PID, 0) != nil
	})
	if now, err := c.Info(t.Context()); err != nil || now.PID != info.PID {
		t.Fatalf("the new data plane after the old one stopped: %+v, %v", now, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, dataplane.PIDName)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(info.PID) {
		t.Errorf("pid file after the old data plane stopped: %q, %v; want %d", b, err, info.PID)
	}
	st, err = c.Set(t.Context(), "web", dataplane.Spec{Listen: addr})
	if err != nil || st.Listen.Bound != addr {
		t.Errorf("the new data plane on the old one's address %s: %+v, %v", addr, st, err)
	}
}

// TestLaunch_EndedContextStartsNothing: Supervisor.Boot launches with what is left of its
// caller's context, none when the data plane it asked was hung: no process is started only
// to be killed at once.
func TestLaunch_EndedContextStartsNothing(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := dataplane.Launch(ctx, dataplane.LaunchConfig{Dir: dir, Command: []string{"/nonexistent/slipway"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Launch with an ended context: %v, want context.Canceled before any process is started", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "dataplane.log")); err == nil {
		t.Errorf("Launch with an ended context opened the data plane's log")
	}
}

// TestLaunch_RefusesANewDataPlaneOfAnotherProtocol: the executable on disk was replaced by a
// build of another protocol; the data plane it starts is stopped, not driven.
func TestLaunch_RefusesANewDataPlaneOfAnotherProtocol(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envServe, "other-protocol")
	t.Setenv(envServe+"_DIR", dir)
	_, _, err := dataplane.Launch(t.Context(), dataplane.LaunchConfig{Dir: dir, Command: []string{os.Args[0]}})
	if err == nil || !strings.Contains(err.Error(), "speaks protocol") {
		t.Fatalf("Launch of a data plane of another protocol: %v, want an error naming the protocols", err)
	}
	slipwaytest.Eventually(t, 10*time.Second, "the data plane of another protocol to stop answering", func() bool {
		_, err := dataplane.Dial(dir).Info(t.Context())
		return err != nil
	})
}

// TestStop_KillsAHungDataPlane: a data plane stopped with SIGSTOP does not answer; Stop
// kills it (it is this directory's, by its mark), so a clean stop leaves nothing behind.
func TestStop_KillsAHungDataPlane(t *testing.T) {
	dir := t.TempDir()
	c, info := launchChild(t, dir)
	if err := syscall.Kill(info.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop of a hung data plane: %v", err)
	}
	if err := syscall.Kill(info.PID, 0); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", info.PID)); !strings.Contains(string(b), ") Z") {
			t.Errorf("the hung data plane (pid %d) still runs after Stop", info.PID)
		}
	}
	// With no data plane at all, Stop has nothing to do.
	if err := dataplane.Dial(t.TempDir()).Stop(t.Context()); err != nil {
		t.Errorf("Stop with no data plane: %v", err)
	}
}

// TestStop_LeavesAnUnmarkedProcessAlone: a pid file naming a process that is not this
// directory's data plane (here, the test itself) gets an error, never a kill.
func TestStop_LeavesAnUnmarkedProcessAlone(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/"+dataplane.PIDName, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	err := dataplane.Dial(dir).Stop(t.Context())
	if err == nil || !strings.Contains(err.Error(), "left alone") {
		t.Errorf("Stop with a pid file naming another process: %v, want an error that leaves it alone", err)
	}
}
