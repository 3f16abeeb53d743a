package main

import (
	"bytes"
	"net"
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

// dataPlanesOf returns the pids of the live processes marked as the data plane of data.
func dataPlanesOf(t *testing.T, data string) []int {
	t.Helper()
	abs, err := filepath.Abs(data)
	if err != nil {
		t.Fatal(err)
	}
	mark := []byte(dataplane.EnvMark + "=" + abs + "\x00")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, mark...)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// TestE2E_ServerThatCannotListenLeavesNoDataPlane: a local-platform server whose API address
// is taken exits with the error, and leaves no data plane process behind serving nothing.
func TestE2E_ServerThatCannotListenLeavesNoDataPlane(t *testing.T) {
	bin := slipwayBin(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	data := filepath.Join(t.TempDir(), "data")
	e := &e2e{t: t, dir: t.TempDir()}
	cmd := exec.Command(bin, "server", "--platform", "local", "--data", data, "--listen", taken.Addr().String())
	cmd.Env = e.env()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("server on a taken address: %v\n%s", err, out)
	}
	if pids := dataPlanesOf(t, data); len(pids) > 0 {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("the server that did not start left data plane process(es) %v running:\n%s", pids, out)
	}
}

// TestE2E_DataPlaneRefusesADirectoryOpenToOthers: `slipway dataplane` run by hand on a
// directory other users can write (where one may have planted dataplane.pid as a link to a
// file of this user's) refuses it, as the server does, and writes nothing there.
func TestE2E_DataPlaneRefusesADirectoryOpenToOthers(t *testing.T) {
	bin := slipwayBin(t)
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(open, dataplane.PIDName)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "dataplane", "--data", open)
	cmd.Env = (&e2e{t: t, dir: t.TempDir()}).env()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("slipway dataplane served a directory open to others:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), "is open to other users (mode 0777)") {
		t.Errorf("slipway dataplane on a 0777 directory: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me\n" {
		t.Errorf("the file behind the planted pid file now holds %q", b)
	}
}
