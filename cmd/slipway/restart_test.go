package main

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/platform/local"
)

// passedFD returns a descriptor of ln's socket that the code under test owns, as a new
// server process owns the descriptors it inherits.
func passedFD(t *testing.T, ln net.Listener) int {
	t.Helper()
	f, err := local.ListenerFile(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestTakeInheritance(t *testing.T) {
	t.Run("a server started by hand inherits nothing", func(t *testing.T) {
		t.Setenv(envInherit, "")
		t.Setenv(envReadyFD, "")
		inh, err := takeInheritance()
		if err != nil {
			t.Fatal(err)
		}
		defer inh.close()
		if inh.restarted() || inh.api != nil || inh.lock != nil {
			t.Errorf("inheritance without the environment: %+v", inh)
		}
	})

	t.Run("the sockets and the ready pipe of a restart", func(t *testing.T) {
		api, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer api.Close()
		app, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		wfd, err := syscall.Dup(int(w.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		key := "web/main" // an app listener, as a server that served app traffic itself passed them
		t.Setenv(envInherit, "api="+strconv.Itoa(passedFD(t, api))+","+key+"="+strconv.Itoa(passedFD(t, app)))
		t.Setenv(envReadyFD, strconv.Itoa(wfd))

		inh, err := takeInheritance()
		if err != nil {
			t.Fatal(err)
		}
		defer inh.close()
		if os.Getenv(envInherit) != "" || os.Getenv(envReadyFD) != "" {
			t.Errorf("the environment still names the inherited descriptors; instances would see them")
		}
		if !inh.restarted() || inh.parent != os.Getppid() {
			t.Errorf("restarted %v, parent %d; want true, %d", inh.restarted(), inh.parent, os.Getppid())
		}
		ln, err := inh.listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if ln.Addr().String() != api.Addr().String() {
			t.Errorf("API listener on %s, want the inherited %s", ln.Addr(), api.Addr())
		}
		// The data plane serves the apps now: an inherited app socket is closed, so that
		// once the old server closes its own nothing accepts on it.
		_ = app.Close()
		if conn, err := net.DialTimeout("tcp", app.Addr().String(), time.Second); err == nil {
			conn.Close()
			t.Errorf("an inherited app socket is still open")
		}
		// The ready pipe reaches the old server.
		if _, err := inh.ready.WriteString("ready\n"); err != nil {
			t.Fatal(err)
		}
		inh.close()
		inh.ready = nil
		b, err := io.ReadAll(r)
		if err != nil || string(b) != "ready\n" {
			t.Errorf("old server read %q, %v", b, err)
		}
	})

	for _, bad := range []struct{ inherit, ready string }{
		{"api=x", ""},
		{"api=1", ""},
		{"=5", ""},
		{"api=999", ""}, // not an open descriptor
		{"", "nope"},
	} {
		t.Run("rejects "+bad.inherit+bad.ready, func(t *testing.T) {
			t.Setenv(envInherit, bad.inherit)
			t.Setenv(envReadyFD, bad.ready)
			if inh, err := takeInheritance(); err == nil {
				inh.close()
				t.Errorf("takeInheritance accepted %s=%q %s=%q", envInherit, bad.inherit, envReadyFD, bad.ready)
			}
		})
	}
}

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
