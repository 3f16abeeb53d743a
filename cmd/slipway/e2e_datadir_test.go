package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestE2E_DataDirectoryLock: a second server on a data directory in use is refused with the
// holder's pid, and a server killed with SIGKILL leaves no lock behind.
func TestE2E_DataDirectoryLock(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })
	second := exec.Command(e.bin, "server", "--platform", "sim", "--data", e.data, "--listen", "127.0.0.1:0")
	second.Env = e.env()
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another slipway server (pid "+strconv.Itoa(e.srv.Process.Pid)+")") {
		t.Fatalf("second server: %v\n%s; want a refusal naming pid %d", err, out, e.srv.Process.Pid)
	}
	e.must(0, "get", "apps") // the first one carries on
	e.stopServer(os.Kill)
	e.startServer()
	e.must(0, "get", "apps")
}

// TestE2E_StoreIntegrityBackupRestore: a store truncated to nothing or replaced by another
// is refused at startup with a clear error, and a backup taken while the server runs
// restores every app.
func TestE2E_StoreIntegrityBackupRestore(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })
	e.must(0, "apply", "-f", e.writeApp("v1"))
	backup := filepath.Join(e.dir, "backup.db")
	if out := e.must(0, "backup", backup); !strings.Contains(out, "backup written to "+backup) {
		t.Errorf("backup said %q", out)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	e.stopServer(os.Interrupt)

	db := filepath.Join(e.data, "slipway.db")
	start := func() (string, error) {
		cmd := exec.Command(e.bin, "server", "--platform", "sim", "--data", e.data, "--listen", "127.0.0.1:0")
		cmd.Env = e.env()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	removeWAL := func() {
		_ = os.Remove(db + "-wal")
		_ = os.Remove(db + "-shm")
	}
	// Truncated to 0 bytes.
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	removeWAL()
	if out, err := start(); err == nil || !strings.Contains(out, "is empty") || !strings.Contains(out, "restore it from a backup") {
		t.Fatalf("start on a truncated store: %v\n%s", err, out)
	}
	if fi, _ := os.Stat(db); fi.Size() != 0 {
		t.Fatal("the refused start changed the store file")
	}
	// Replaced by another store.
	other := &e2e{t: t, bin: e.bin, data: t.TempDir(), dir: t.TempDir()}
	other.startServer()
	other.stopServer(os.Interrupt)
	b, err := os.ReadFile(filepath.Join(other.data, "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := start(); err == nil || !strings.Contains(out, "is not the store of data directory") {
		t.Fatalf("start on another store: %v\n%s", err, out)
	}
	// Restored from the backup: every app is back.
	b, err = os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	removeWAL()
	e.startServer()
	if out := e.must(0, "get", "apps"); !strings.Contains(out, "web") {
		t.Fatalf("apps after the restore:\n%s", out)
	}
}

// TestE2E_DataDirectoryOpenToOthersIsRefused: a data directory other users can write, or an
// admin token that is a link or open to others, stops the server before it starts.
func TestE2E_DataDirectoryOpenToOthersIsRefused(t *testing.T) {
	bin := slipwayBin(t)
	start := func(data string) (string, error) {
		out, err := exec.Command(bin, "server", "--platform", "sim", "--data", data, "--listen", "127.0.0.1:0").CombinedOutput()
		return string(out), err
	}
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if out, err := start(open); err == nil || !strings.Contains(out, "is open to other users (mode 0777)") {
		t.Errorf("a 0777 data directory: %v\n%s", err, out)
	}
	linked := t.TempDir()
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), filepath.Join(linked, adminTokenFile)); err != nil {
		t.Fatal(err)
	}
	if out, err := start(linked); err == nil || !strings.Contains(out, "is not a plain file") {
		t.Errorf("an admin token that is a link: %v\n%s", err, out)
	}
	readable := t.TempDir()
	if err := os.WriteFile(filepath.Join(readable, adminTokenFile), []byte("slw_x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := start(readable); err == nil || !strings.Contains(out, "is open to other users (mode 0644)") {
		t.Errorf("an admin token readable by others: %v\n%s", err, out)
	}
}
