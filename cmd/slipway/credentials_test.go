package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestDiscoverToken_OnlyForTheServerThatWroteIt: the CLI finds the admin token of a data
// directory only for the address its server (DATA/server.pid) listens on. Another process
// on the port, a stale pointer or a stale pid file get nothing.
func TestDiscoverToken_OnlyForTheServerThatWroteIt(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv(envData, "")
	t.Chdir(t.TempDir())                        // no .slipway here
	ln, err := net.Listen("tcp", "127.0.0.1:0") // this process serves the port
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := t.TempDir()
	tokenPath := filepath.Join(data, adminTokenFile)
	if err := os.WriteFile(tokenPath, []byte("slw_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writePointers(ln.Addr(), tokenPath, slog.New(slog.DiscardHandler))
	url := "http://" + ln.Addr().String()
	setPID := func(pid int) {
		if err := os.WriteFile(filepath.Join(data, pidFileName), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	setPID(os.Getpid())
	if got := discoverToken(url); got != "slw_secret" {
		t.Fatalf("the server's own address: %q, want its token", got)
	}
	// Another process (here: pid 1) named by the pid file does not hold the port.
	setPID(1)
	if got := discoverToken(url); got != "" {
		t.Errorf("a pid file naming another process: %q, want nothing", got)
	}
	setPID(os.Getpid())
	// Another port of this machine that the server does not listen on.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	otherURL := "http://" + other.Addr().String()
	other.Close()
	if got := discoverToken(otherURL); got != "" {
		t.Errorf("an address without a pointer: %q", got)
	}
	// The server is gone: its stale pointer and pid file give nothing.
	ln.Close()
	if got := discoverToken(url); got != "" {
		t.Errorf("a port the server no longer holds: %q, want nothing", got)
	}
	// Never for a host that is not loopback.
	if got := discoverToken("http://10.0.0.1:7070"); got != "" {
		t.Errorf("a remote host: %q", got)
	}
}
