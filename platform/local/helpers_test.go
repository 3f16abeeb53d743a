package local_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/local"
	"slipway.dev/slipway/slipwaytest"
)

// appBin is the test server (testdata/app), built once by TestMain.
var appBin string

func TestMain(m *testing.M) {
	if os.Getenv(wsEchoEnv) != "" { // run as an instance (websocket_test.go)
		os.Exit(serveWebSocketEcho())
	}
	if dir := os.Getenv(dataPlaneEnv); dir != "" { // run as a data plane process (dataplane_test.go)
		os.Exit(serveDataPlane(dir))
	}
	dir, err := os.MkdirTemp("", "slipway-local-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	appBin = filepath.Join(dir, "app")
	if out, err := exec.Command("go", "build", "-o", appBin, "./testdata/app").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test app: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitFor is how long a test polls for the platform to converge.
const waitFor = 15 * time.Second

// server is a running Platform and how to stop it.
type server struct {
	*local.Platform
	cfg  local.Config
	stop func() // cancels Run and waits for it; safe to call twice
}

// start runs a Platform on cfg (DataDir defaults to a temp dir) until the test ends.
func start(t testing.TB, cfg local.Config) *server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 3 * time.Second
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 3 * time.Second
	}
	p := local.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return 30s after its context ended")
		}
	}
	t.Cleanup(stop)
	return &server{Platform: p, cfg: cfg, stop: stop}
}

// runSpec runs the test app with env (VERSION and the like).
func runSpec(env ...string) slipway.RunSpec {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return slipway.RunSpec{Command: appBin, Env: m}
}

// revision returns a revision of app labelled version, running the test app with
// VERSION=version and env, checked by health.
func revision(app, version string, health slipway.Health, env ...string) slipway.Revision {
	spec := slipway.RevisionSpec{Version: version, Run: runSpec(append([]string{"VERSION=" + version}, env...)...), Health: health}
	return slipway.Revision{App: app, ID: spec.Hash(), Version: version, Spec: spec}
}

func place(r slipway.Revision, n int) slipway.Placement {
	return slipway.Placement{Revision: r, Replicas: n}
}

func weights(ws ...any) slipway.Split {
	var s slipway.Split
	for i := 0; i < len(ws); i += 2 {
		s.Weights = append(s.Weights, slipway.Weight{Revision: ws[i].(slipway.Revision).ID, Weight: ws[i+1].(int)})
	}
	return s
}

func apply(t testing.TB, p slipway.Platform, d slipway.Desired) {
	t.Helper()
	if err := p.Apply(t.Context(), d); err != nil {
		t.Fatalf("apply %s: %v", d.App, err)
	}
}

// until polls Observe until ok accepts it, and fails the test with the last observation
// when waitFor passes first.
func until(t testing.TB, p slipway.Platform, app, what string, ok func(slipway.Observed) bool) slipway.Observed {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		obs, err := p.Observe(t.Context(), app)
		if err != nil {
			t.Fatalf("observe %s: %v", app, err)
		}
		if ok(obs) {
			return obs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s after %v; last observed: %+v", app, what, waitFor, obs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyCount reports whether obs has exactly want[rev] ready, running instances of each
// revision and nothing else.
func readyCount(want map[string]int) func(slipway.Observed) bool {
	return func(obs slipway.Observed) bool {
		n := 0
		for _, r := range obs.Revisions {
			if _, ok := want[r.Revision]; !ok && len(r.Instances) > 0 {
				return false
			}
			n += len(r.Instances)
		}
		for rev, w := range want {
			st := obs.Revision(rev)
			if len(st.Instances) != w || st.Ready() != w {
				return false
			}
			for _, in := range st.Instances {
				if in.State != slipway.InstanceRunning {
					return false
				}
			}
		}
		return true
	}
}

// client returns an HTTP client whose connections close with the test.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get fetches url and returns the status code and body.
func get(c *http.Client, url string, header ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	return do(c, req, header...)
}

// post sends a small body to url: a request the proxy may not retry elsewhere, so a
// backend stopped under it would show as a failure.
func post(c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("payload"))
	if err != nil {
		return 0, "", err
	}
	return do(c, req)
}

func do(c *http.Client, req *http.Request, header ...string) (int, string, error) {
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// answer is what the test app says on /: its version, port and pid.
type answer struct {
	version string
	port    string
	pid     int
}

func parseAnswer(body string) (answer, error) {
	f := strings.Fields(body)
	if len(f) != 3 {
		return answer{}, fmt.Errorf("unexpected answer %q", body)
	}
	pid, err := strconv.Atoi(f[2])
	if err != nil {
		return answer{}, fmt.Errorf("unexpected answer %q", body)
	}
	return answer{version: f[0], port: f[1], pid: pid}, nil
}

// pidAt asks the instance at addr for its pid.
func pidAt(t testing.TB, c *http.Client, addr string) int {
	t.Helper()
	code, body, err := get(c, "http://"+addr+"/")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v", addr, code, body, err)
	}
	a, err := parseAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	return a.pid
}

// pidsOf returns the pids of app's instances, by instance ID.
func pidsOf(t testing.TB, p slipway.Platform, c *http.Client, app string) map[string]int {
	t.Helper()
	obs, err := p.Observe(t.Context(), app)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range obs.Revisions {
		for _, in := range r.Instances {
			out[in.ID] = pidAt(t, c, in.Address)
		}
	}
	return out
}

// gone reports whether process pid no longer exists (or is a zombie nobody reaped yet).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// waitGone polls until every pid is gone.
func waitGone(t testing.TB, pids map[string]int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for id, pid := range pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of instance %s still runs", pid, id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// harness is the conformance suite's view of the local platform.
func harness() slipwaytest.PlatformHarness {
	return slipwaytest.PlatformHarness{
		New: func(t *testing.T) slipway.Platform {
			return start(t, local.Config{}).Platform
		},
		Run:  slipway.RunSpec{Command: appBin},
		Wait: waitFor,
	}
}
