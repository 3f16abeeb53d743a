package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/slipwaytest"
	"slipway.dev/slipway/slipwaytest/kubetest"
)

// bin is the slipway binary built once for the package's tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slipway-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "slipway")
	// Servers record where their admin tokens are in the configuration directory, and the
	// CLI finds them there: this run's own, shared by every server and command it starts.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SLIPWAY_") {
			_ = os.Unsetenv(k)
		}
	}
	if err := os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if out, err := slipwaytest.GoBuild("../cmd/slipway", bin).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	// The kubernetes tests share one test cluster, started by the first of them and stopped
	// here after the last.
	code := kubetest.Run(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is one slipway server on the local platform, and the CLI pointed at it.
type cluster struct {
	t    *testing.T
	data string
	dir  string
	// platform is the server's own environment's platform; empty: local.
	platform string
	// listen is the address the server listens on; empty: a free port of its own choice. A
	// server killed and started again must be found where it was.
	listen string
	flags  []string // more server flags, for every start
	server string
	srv    *exec.Cmd
	done   chan error
	// reaper is set once a cleanup that kills a data plane left running is registered.
	reaper bool
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, data: t.TempDir(), dir: t.TempDir()}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) start(extra ...string) {
	c.t.Helper()
	if !c.reaper {
		// Registered before the caller's c.stop, so it runs after it: a test that ends
		// with its server killed leaves no data plane behind.
		c.reaper = true
		data := c.data
		c.t.Cleanup(func() {
			if pid := readPIDFile(filepath.Join(data, dataplane.PIDName)); alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
	listen := c.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	platform := c.platform
	if platform == "" {
		platform = "local"
	}
	args := []string{"server", "--platform", platform, "--data", c.data, "--listen", listen, "--poll", "50ms", "--log-level", "warn"}
	args = append(append(args, c.flags...), extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(c.data, "server.log"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.srv, c.done = cmd, make(chan error, 1)
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("server said nothing: %v", err)
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		c.t.Fatalf("server banner without address: %q", line)
	}
	c.server = strings.Fields(line[i:])[0]
	go func() { _, _ = io.Copy(io.Discard, r) }()
	go func() { c.done <- cmd.Wait(); _ = logf.Close() }()
}

// stop interrupts the server and waits for it to stop every instance.
func (c *cluster) stop() {
	if c.srv == nil {
		return
	}
	plane := readPIDFile(filepath.Join(c.data, dataplane.PIDName))
	_ = c.srv.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
		// A clean stop stops the data plane too.
		deadline := time.Now().Add(15 * time.Second)
		for alive(plane) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(plane) {
			_ = syscall.Kill(plane, syscall.SIGKILL)
			c.t.Errorf("the data plane (pid %d) outlived a clean stop of the server", plane)
		}
	case <-time.After(30 * time.Second):
		_ = c.srv.Process.Kill()
		c.t.Error("server did not stop within 30s")
	}
	c.srv = nil
	if c.t.Failed() {
		if b, err := os.ReadFile(filepath.Join(c.data, "server.log")); err == nil {
			c.t.Logf("server log:\n%s", lastLines(string(b), 40))
		}
	}
}

// readPIDFile returns the pid in the file at path, 0 when there is none.
func readPIDFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// cli runs a slipway command and returns stdout and the exit code.
func (c *cluster) cli(args ...string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "SLIPWAY_SERVER="+c.server)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ee.ExitCode() == 1 {
			c.t.Logf("slipway %s: %s", strings.Join(args, " "), errb.String())
		}
		return out.String(), ee.ExitCode()
	case err != nil:
		c.t.Fatalf("slipway %v: %v", args, err)
	}
	return out.String(), 0
}

func (c *cluster) must(args ...string) string {
	c.t.Helper()
	out, code := c.cli(args...)
	if code != 0 {
		c.t.Fatalf("slipway %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// status is the part of `slipway status -o json` the tests read.
type status struct {
	Stable *struct {
		Revision string `json:"revision"`
		Version  string `json:"version"`
	} `json:"stable"`
	Rollout *struct {
		ID       string `json:"id"`
		Revision string `json:"revision"`
		Version  string `json:"version"`
		Phase    string `json:"phase"`
		Step     int    `json:"step"`
		Weight   int    `json:"weight"`
		Reason   string `json:"reason"`
		// CompletedAt is when the rollout ended.
		CompletedAt *time.Time `json:"completedAt"`
	} `json:"rollout"`
	Live []struct {
		Revision string `json:"revision"`
		Version  string `json:"version"`
		Ready    int    `json:"ready"`
		List     []struct {
			ID       string `json:"id"`
			Address  string `json:"address"`
			Restarts int    `json:"restarts"`
		} `json:"list"`
	} `json:"live"`
	Split struct {
		Weights []struct {
			Revision string `json:"revision"`
			Weight   int    `json:"weight"`
		} `json:"weights"`
		Approximate bool `json:"approximate"`
	} `json:"split"`
	Drift []struct {
		Kind     string `json:"kind"`
		Revision string `json:"revision"`
		Message  string `json:"message"`
	} `json:"drift"`
}

func (c *cluster) status(app string) status {
	c.t.Helper()
	return c.statusIn("", app)
}

// statusIn is status of app in environment env ("": the default one).
func (c *cluster) statusIn(env, app string) status {
	c.t.Helper()
	args := []string{"status", app, "-o", "json"}
	if env != "" {
		args = append([]string{"-e", env}, args...)
	}
	var s status
	if err := json.Unmarshal([]byte(c.must(args...)), &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// waitFor polls the app's status until ok.
func (c *cluster) waitFor(app, what string, ok func(status) bool) status {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := c.status(app)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: timed out waiting for %s: %+v", app, what, s.Rollout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// appFile writes an App running the demo service at version, with the given strategy YAML
// (indented under `strategy:`) and extra demo-app arguments, and returns its path.
func (c *cluster) appFile(name, listen, version, strategy string, replicas int, extra ...string) string {
	c.t.Helper()
	args := []string{"demo-app", "--port", "${PORT}", "--version", version}
	args = append(args, extra...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	doc := fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: %s}
spec:
  replicas: %d
  version: %s
  run: {command: %q, args: [%s]}
  health:
    readiness: {http: {path: /healthz}, period: 200ms}
  traffic: {listen: %q}
  strategy:
%s
`, name, replicas, version, bin, strings.Join(quoted, ", "), listen, strategy)
	p := filepath.Join(c.dir, name+"-"+version+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// load sends steady GET requests to a listener and counts what users see.
type load struct {
	url      string
	rate     int
	client   *http.Client
	total    atomic.Int64
	failed   atomic.Int64 // transport errors and answers not from the app (502, 503)
	appErrs  atomic.Int64 // 500s the app itself sent (a bad version)
	mu       sync.Mutex
	byVer    map[string]int64 // answers from the app, by version
	errByVer map[string]int64 // of which 500s, by version
	failures []string
	cancel   context.CancelFunc
	done     chan struct{}
}

// startLoad sends rate requests per second to url until stopped.
func startLoad(t *testing.T, url string, rate int) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{url: url, rate: rate, byVer: map[string]int64{}, errByVer: map[string]int64{}, cancel: cancel, done: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	go l.run(ctx)
	t.Cleanup(l.stop)
	return l
}

func (l *load) run(ctx context.Context) {
	defer close(l.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.one()
		}()
	}
}

func (l *load) one() {
	l.total.Add(1)
	resp, err := l.client.Get(l.url)
	if err != nil {
		l.fail(err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ver := resp.Header.Get("X-Demo-Version")
	switch {
	case resp.StatusCode == 200 && ver != "":
		l.mu.Lock()
		l.byVer[ver]++
		l.mu.Unlock()
	case resp.StatusCode == 500 && ver != "":
		l.appErrs.Add(1)
		l.mu.Lock()
		l.byVer[ver]++
		l.errByVer[ver]++
		l.mu.Unlock()
	default:
		l.fail(fmt.Sprintf("status %d from %q", resp.StatusCode, ver))
	}
}

func (l *load) fail(why string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, why)
	}
	l.mu.Unlock()
}

// counts returns copies of the answers and the app's 500s so far, by version.
func (l *load) counts() (byVer, errByVer map[string]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.byVer), maps.Clone(l.errByVer)
}

func (l *load) stop() {
	l.cancel()
	<-l.done
}

// report stops the load and logs what it counted.
func (l *load) report(t *testing.T, name string) (total, failed int64, byVer map[string]int64) {
	t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s: %d requests, %d failed, %d app errors, by version %v", name, l.total.Load(), l.failed.Load(), l.appErrs.Load(), l.byVer)
	if len(l.failures) > 0 {
		t.Logf("first failures: %q", l.failures)
	}
	return l.total.Load(), l.failed.Load(), l.byVer
}
