package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/auth"
	"slipway.dev/slipway/sqlite"
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

// TestEnsureFileAdminToken: the secret of --admin-token-file becomes the admin token
// file-admin; the same secret again changes nothing; a new secret becomes file-admin-2 and
// revokes file-admin (a rotated Kubernetes Secret); a revoked secret and a malformed one
// stop the server with a reason.
func TestEnsureFileAdminToken(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "slipway.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	tokens := auth.New(auth.Config{Store: store})
	log := slog.New(slog.DiscardHandler)
	file := filepath.Join(t.TempDir(), "token")
	put := func(secret string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	active := func() []string {
		t.Helper()
		all, err := tokens.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tok := range all {
			if tok.Active(time.Now()) {
				names = append(names, tok.Name)
			}
		}
		return names
	}
	first, second := "slw_"+strings.Repeat("1", 64), "slw_"+strings.Repeat("2", 64)

	put(first)
	for range 2 {
		if err := ensureFileAdminToken(ctx, tokens, file, time.Now(), log); err != nil {
			t.Fatal(err)
		}
		if got := active(); !slices.Equal(got, []string{"file-admin"}) {
			t.Fatalf("active tokens %v, want [file-admin]", got)
		}
	}
	if tok, err := tokens.Authenticate(ctx, first); err != nil || tok.Role != slipway.RoleAdmin {
		t.Fatalf("the file's secret: %+v, %v", tok, err)
	}

	put(second)
	if err := ensureFileAdminToken(ctx, tokens, file, time.Now(), log); err != nil {
		t.Fatal(err)
	}
	if got := active(); !slices.Equal(got, []string{"file-admin-2"}) {
		t.Errorf("after a new secret, active tokens %v, want [file-admin-2]", got)
	}
	if _, err := tokens.Authenticate(ctx, first); err == nil {
		t.Error("the replaced secret still authenticates")
	}

	put(first)
	err = ensureFileAdminToken(ctx, tokens, file, time.Now(), log)
	if err == nil || !strings.Contains(err.Error(), "token file-admin's, which is revoked") {
		t.Errorf("a revoked secret put back: %v, want a refusal naming file-admin", err)
	}
	put("hunter2")
	if err := ensureFileAdminToken(ctx, tokens, file, time.Now(), log); slipway.ErrorCode(err) != slipway.EINVALID {
		t.Errorf("a malformed secret: %v, want EINVALID", err)
	}
	if err := ensureFileAdminToken(ctx, tokens, filepath.Join(t.TempDir(), "missing"), time.Now(), log); err == nil {
		t.Error("a missing file was accepted")
	}
	if got := active(); !slices.Equal(got, []string{"file-admin-2"}) {
		t.Errorf("refusals changed the tokens: active %v", got)
	}
}
