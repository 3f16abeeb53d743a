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
