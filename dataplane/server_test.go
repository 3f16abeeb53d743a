package dataplane_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/proxy"
	"slipway.dev/slipway/slipwaytest"
)

// serve runs Serve on dir until the test ends and returns a client once it answers.
func serve(t *testing.T, dir string) *dataplane.Client {
	t.Helper()
	return serveLogged(t, dir, nil)
}

// serveLogged is serve with the data plane's logs sent to log (discarded when nil).
func serveLogged(t *testing.T, dir string, log *slog.Logger) *dataplane.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dataplane.Serve(ctx, dataplane.ServeConfig{Dir: dir, Version: "test", DrainTimeout: 2 * time.Second, Log: log})
	}()
	c := dataplane.Dial(dir)
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return 20s after its context ended")
		}
		c.CloseIdleConnections()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Info(t.Context()); err == nil {
			return c
		} else if time.Now().After(deadline) {
			t.Fatalf("data plane not up: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestServe_OneDataPlanePerDirectory(t *testing.T) {
	dir := t.TempDir()
	c := serve(t, dir)
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.PID != os.Getpid() || info.Protocol != dataplane.Protocol || info.Version != "test" {
		t.Errorf("info %+v", info)
	}
	err = dataplane.Serve(t.Context(), dataplane.ServeConfig{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "another data plane") || !strings.Contains(err.Error(), "pid") {
		t.Errorf("a second data plane on the directory: %v, want an error naming the holder", err)
	}
	// The first one still serves.
	if _, err := c.Info(t.Context()); err != nil {
		t.Errorf("the first data plane after the refused second: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, dataplane.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestServe_HostileControlRequests sends what a confused or hostile local client might:
// each gets a 4xx and changes nothing.
func TestServe_HostileControlRequests(t *testing.T) {
	dir := t.TempDir()
	c := serve(t, dir)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(dir, dataplane.SocketName))
		}}}
	big := `{"table":{"split":{}},"listen":"` + strings.Repeat("x", 17<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"body over the limit", http.MethodPut, "/v1/apps/web", big, 400},
		{"unknown field", http.MethodPut, "/v1/apps/web", `{"tabel":{}}`, 400},
		{"not JSON", http.MethodPut, "/v1/apps/web", `<xml/>`, 400},
		{"bad app name", http.MethodPut, "/v1/apps/..%2Fx", `{"table":{"split":{}}}`, 400},
		{"drain without a backend", http.MethodPost, "/v1/apps/web/drain", ``, 400},
		{"drain of a bad backend name", http.MethodPost, "/v1/apps/web/drain?backend=%00", ``, 400},
		{"window without a duration", http.MethodGet, "/v1/window?app=web&revision=r1", ``, 400},
		{"window of a negative duration", http.MethodGet, "/v1/window?app=web&revision=r1&d=-1s", ``, 400},
		{"unknown path", http.MethodGet, "/v1/nope", ``, 404},
		{"wrong method", http.MethodGet, "/v1/stop", ``, 405},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, "http://dataplane"+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if apps, err := c.State(t.Context()); err != nil || len(apps) != 0 {
		t.Errorf("state after hostile requests: %v %v, want no app", apps, err)
	}
}

func TestClient_MetricsAndWindows(t *testing.T) {
	c := serve(t, t.TempDir())
	v1 := backend(t, "v1")
	st, err := c.Set(t.Context(), "web", dataplane.Spec{Table: table("r1", v1), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		get(t, st.Listen.Bound)
	}
	w, err := c.RequestWindow(t.Context(), "web", "r1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests != 3 {
		t.Errorf("window counts %d requests, want 3", w.Requests)
	}
	mfs, err := c.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "slipway_proxy_requests_total" {
			found = true
		}
	}
	if !found {
		t.Errorf("gathered %d families, none slipway_proxy_requests_total", len(mfs))
	}
}

// TestClient_UnreachableDataPlaneIsAnError: with no data plane, every call fails; a window
// is an error, never an empty window that would read as "no errors".
func TestClient_UnreachableDataPlaneIsAnError(t *testing.T) {
	c := dataplane.Dial(t.TempDir())
	if _, err := c.RequestWindow(t.Context(), "web", "r1", time.Minute); err == nil {
		t.Error("TryWindow without a data plane: no error")
	}
	if _, err := c.Set(t.Context(), "web", dataplane.Spec{}); err == nil {
		t.Error("Set without a data plane: no error")
	}
	if _, err := c.Gather(); err == nil {
		t.Error("Gather without a data plane: no error")
	}
}

// TestClient_BootWithABigState: Boot, which the local platform asks for every second to
// learn whether the data plane is the same one, answers whatever the size of the tables.
// The tables of many apps make a state bigger than a reply may be (16 MiB); Boot must not
// read it, or the platform takes a data plane that answers for one that does not.
func TestClient_BootWithABigState(t *testing.T) {
	c := serve(t, t.TempDir())
	// Two tables of about 9 MiB each (a few backends with long addresses stand for many):
	// each under the request limit, over a reply's together.
	host := strings.Repeat("h", 1<<20)
	for _, app := range []string{"a", "b"} {
		tb := proxy.Table{Backends: map[string][]proxy.Backend{}, Split: slipway.Split{Weights: []slipway.Weight{{Revision: "r1", Weight: 100}}}}
		for i := range 9 {
			tb.Backends["r1"] = append(tb.Backends["r1"], proxy.Backend{ID: "r1-" + strconv.Itoa(i), Revision: "r1", Addr: host + ":" + strconv.Itoa(1024+i)})
		}
		// A 9 MiB table takes a while to encode and decode with the race detector on a
		// loaded machine: a call past its timeout is tried again (a Set is idempotent).
		var err error
		for try := 0; try < 3; try++ {
			if _, err = c.Set(t.Context(), app, dataplane.Spec{Table: tb}); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := c.Boot(t.Context())
	if err != nil || b == "" {
		t.Errorf("Boot with 18 MiB of tables: %q, %v", b, err)
	}
}

// TestServe_ControlSocketRemovedOrDirectoryMoved: a control socket removed by hand is bound
// again (the data plane still holds the directory's lock, and a server must reach it);
// a data directory moved away keeps its data plane serving the apps.
func TestServe_ControlSocketRemovedOrDirectoryMoved(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	c := serveLogged(t, dir, slog.New(slog.NewTextHandler(logs, nil)))
	if err := os.Remove(filepath.Join(dir, dataplane.SocketName)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.CloseIdleConnections() // a connection made before still reaches it
		if _, err := c.Info(t.Context()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the data plane does not answer 10s after its socket was removed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fi, err := os.Stat(filepath.Join(dir, dataplane.SocketName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the socket bound again: %v, %v; want mode 0600", fi, err)
	}

	v1 := backend(t, "v1")
	st, err := c.Set(t.Context(), "web", dataplane.Spec{Table: table("r1", v1), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(parent, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	// The data plane's watch looks at the directory after the move: it finds no socket at
	// the old path and cannot bind one there; it keeps serving all the same.
	slipwaytest.Eventually(t, 10*time.Second, "the data plane's watch to find the directory moved", func() bool {
		return strings.Contains(logs.String(), "cannot be bound again")
	})
	get(t, st.Listen.Bound)
	at := dataplane.Dial(moved)
	defer at.CloseIdleConnections()
	if _, err := at.Info(t.Context()); err != nil {
		t.Errorf("the data plane of the moved directory, at its new path: %v", err)
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
}

// logBuffer is a bytes.Buffer that a data plane's logger and the test may use at once.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
