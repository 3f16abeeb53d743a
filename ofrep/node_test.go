package ofrep_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/ofrep"
)

// statusWriter records the status a handler wrote; Unwrap keeps Flush working for streams.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestNodeWebProvider runs the OpenFeature web SDK with the OFREP web provider
// (testdata/node, exact versions in package-lock.json) under Node against a real server:
// bulk evaluation, ETag revalidation answered with 304, a context change that must not get a
// 304, and a flag change delivered through the event stream.
func TestNodeWebProvider(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = exec.LookPath("npm")
	}
	if err != nil {
		t.Fatalf("node and npm are required to test with the real OFREP web provider: run .ci/run (it installs them) or apt-get install -y nodejs npm (%v)", err)
	}
	dir := filepath.Join("testdata", "node")
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); errors.Is(err, fs.ErrNotExist) {
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}

	const key = "node-test-key"
	srv, cur := newServer(t, ofrep.Config{APIKeys: []string{key}, Heartbeat: time.Second})
	changed := compileData(t, "flags-v2.json", bytes.Replace(mustRead(t, "testdata/flags.json"),
		[]byte(`"defaultVariant": "high"`), []byte(`"defaultVariant": "low"`), 1), 2)
	var bulk200, bulk304, revalidated200, afterEvent atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /test/change", func(w http.ResponseWriter, r *http.Request) {
		cur.Swap(changed)
		srv.Notify()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/ofrep/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: 200}
		srv.ServeHTTP(sw, r)
		if r.URL.Path != "/ofrep/v1/evaluate/flags" {
			return
		}
		switch {
		case sw.status == http.StatusNotModified:
			bulk304.Add(1)
		case sw.status == 200 && r.Header.Get("If-None-Match") != "":
			revalidated200.Add(1)
			fallthrough
		case sw.status == 200:
			bulk200.Add(1)
		}
		if r.URL.Query().Get("flagConfigEtag") != "" {
			afterEvent.Add(1)
		}
	}))
	hs := httptest.NewServer(mux)
	hs.Config.RegisterOnShutdown(srv.CloseStreams)
	t.Cleanup(hs.Close)
	t.Cleanup(srv.CloseStreams)

	cmd := exec.CommandContext(ctx, node, "--test", "provider.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OFREP_BASE_URL="+hs.URL, "OFREP_API_KEY="+key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") {
		t.Fatalf("node --test reported failures:\n%s", out)
	}
	t.Logf("bulk: %d x 200 (%d revalidated with a changed context), %d x 304, %d after an event", bulk200.Load(), revalidated200.Load(), bulk304.Load(), afterEvent.Load())
	if bulk304.Load() < 1 {
		t.Errorf("the provider's revalidation of an unchanged context got no 304")
	}
	if revalidated200.Load() < 2 {
		t.Errorf("want 200s for If-None-Match with a changed context and after the flag change, got %d", revalidated200.Load())
	}
	if afterEvent.Load() < 1 {
		t.Errorf("no bulk refetch carried flagConfigEtag: the event did not trigger it")
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
