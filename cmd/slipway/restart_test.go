package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestPIDFile(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	path := filepath.Join(dir, pidFileName)
	writePIDFile(dir, log)
	b, err := os.ReadFile(path)
	if err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("pid file %q, %v; want this process's pid", b, err)
	}
	removePIDFile(dir)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("pid file naming this process not removed: %v", err)
	}
	// A pid file the next server wrote is left alone.
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	removePIDFile(dir)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("pid file of another server removed: %v", err)
	}
}
