package handover_test

import (
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/handover"
)

// passedFD returns a descriptor of ln's socket that the code under test owns, as a new
// server process owns the descriptors it inherits.
func passedFD(t *testing.T, ln net.Listener) int {
	t.Helper()
	f, err := handover.ListenerFile(ln)
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
		t.Setenv(handover.EnvInherit, "")
		t.Setenv(handover.EnvReadyFD, "")
		inh, err := handover.Take()
		if err != nil {
			t.Fatal(err)
		}
		defer inh.Close()
		if inh.Restarted() || inh.API != nil || inh.Lock != nil {
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
		t.Setenv(handover.EnvInherit, "api="+strconv.Itoa(passedFD(t, api))+","+key+"="+strconv.Itoa(passedFD(t, app)))
		t.Setenv(handover.EnvReadyFD, strconv.Itoa(wfd))

		inh, err := handover.Take()
		if err != nil {
			t.Fatal(err)
		}
		defer inh.Close()
		if os.Getenv(handover.EnvInherit) != "" || os.Getenv(handover.EnvReadyFD) != "" {
			t.Errorf("the environment still names the inherited descriptors; instances would see them")
		}
		if !inh.Restarted() || inh.Parent != os.Getppid() {
			t.Errorf("restarted %v, parent %d; want true, %d", inh.Restarted(), inh.Parent, os.Getppid())
		}
		ln, err := inh.Listen("127.0.0.1:0")
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
		if _, err := inh.Ready.WriteString("ready\n"); err != nil {
			t.Fatal(err)
		}
		inh.Close()
		inh.Ready = nil
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
			t.Setenv(handover.EnvInherit, bad.inherit)
			t.Setenv(handover.EnvReadyFD, bad.ready)
			if inh, err := handover.Take(); err == nil {
				inh.Close()
				t.Errorf("Take accepted %s=%q %s=%q", handover.EnvInherit, bad.inherit, handover.EnvReadyFD, bad.ready)
			}
		})
	}
}
