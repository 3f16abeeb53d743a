package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/slipwaytest"
)

// slipwayBin builds the slipway binary once per test run.
func slipwayBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slipway")
	out, err := slipwaytest.GoBuild(".", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// e2e drives the built binary as a user would.
type e2e struct {
	t      *testing.T
	bin    string
	data   string
	dir    string
	server string
	srv    *exec.Cmd
	// serverFlags are more flags for every start of the server.
	serverFlags []string
}

// env is the environment of the server and the CLI: a configuration directory of the
// test's own, where the server records where its admin token is and the CLI finds it.
func (e *e2e) env() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SLIPWAY_") })
	return append(env, "XDG_CONFIG_HOME="+filepath.Join(e.dir, "config"))
}

// startServer starts `slipway server --platform sim` on a free port and waits until it
// answers.
func (e *e2e) startServer() {
	e.t.Helper()
	args := []string{"server", "--platform", "sim", "--data", e.data, "--listen", "127.0.0.1:0",
		"--sim-ready-delay", "50ms", "--poll", "20ms", "--resync", "200ms", "--log-level", "warn"}
	cmd := exec.Command(e.bin, append(args, e.serverFlags...)...)
	cmd.Env = e.env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.srv = cmd
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		e.t.Fatalf("server said nothing: %v", err)
	}
	i := strings.Index(line, "http")
	if i < 0 || !strings.Contains(line, "://") {
		e.t.Fatalf("server banner without address: %q", line)
	}
	e.server = strings.Fields(line[i:])[0]
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(os.Stderr) }()
}

func (e *e2e) stopServer(sig os.Signal) {
	e.t.Helper()
	if e.srv == nil {
		return
	}
	_ = e.srv.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- e.srv.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && sig == os.Interrupt && !errors.As(err, &ee) {
			e.t.Errorf("server exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		_ = e.srv.Process.Kill()
		e.t.Error("server did not stop within 15s")
	}
	e.srv = nil
}

// run runs a CLI command and returns its stdout, stderr and exit code.
func (e *e2e) run(args ...string) (string, string, int) {
	e.t.Helper()
	return e.runWith(nil, args...)
}

// runWith runs a CLI command with more environment variables.
func (e *e2e) runWith(env []string, args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(append(e.env(), "SLIPWAY_SERVER="+e.server), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("slipway %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// must runs a command that must exit with code want.
func (e *e2e) must(want int, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != want {
		e.t.Fatalf("slipway %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

type statusJSON struct {
	App    string `json:"app"`
	Stable *struct {
		Revision string `json:"revision"`
		Version  string `json:"version"`
	} `json:"stable"`
	Rollout *struct {
		ID       string `json:"id"`
		Revision string `json:"revision"`
		Version  string `json:"version"`
		Strategy string `json:"strategy"`
		Phase    string `json:"phase"`
		Step     int    `json:"step"`
		Steps    int    `json:"steps"`
		Weight   int    `json:"weight"`
		Reason   string `json:"reason"`
	} `json:"rollout"`
}

func (e *e2e) status(app string) statusJSON {
	e.t.Helper()
	var s statusJSON
	if err := json.Unmarshal([]byte(e.must(0, "status", app, "-o", "json")), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *e2e) waitPhase(app, phase string) statusJSON {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := e.status(app)
		if s.Rollout != nil && s.Rollout.Phase == phase {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never reached %s: %+v", app, phase, s.Rollout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const e2eApp = `apiVersion: slipway.dev/v1alpha1
kind: App
metadata:
  name: web
spec:
  replicas: 3
  version: VERSION
  run:
    command: ./web
    args: ["--port", "${PORT}"]
  health:
    readiness: {http: {path: /healthz}}
  traffic: {listen: "127.0.0.1:18080"}
  strategy:
    canary:
      steps:
        - setWeight: 30
        - analysis: {templates: [smoke]}
        - pause: {}
        - setWeight: 60
---
apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata:
  name: smoke
spec:
  metrics:
    - name: job
      provider:
        job: {command: sh, args: ["-c", "echo checked {{canary.version}}; exit 0"]}
`

func (e *e2e) writeApp(version string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, "web.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(e2eApp, "VERSION", version)), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestE2E_CLI builds the binary and drives server, validate, plan, apply, status --wait,
// promote, abort and rollback against the sim platform, including a server killed with
// SIGKILL mid-rollout.
func TestE2E_CLI(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })

	f := e.writeApp("v1")
	e.must(0, "validate", "-f", f)
	e.must(2, "plan", "-f", f)
	e.must(0, "apply", "-f", f)
	e.must(0, "status", "web", "--wait", "--timeout", "20s")
	e.must(0, "plan", "-f", f) // nothing left to change

	// v2 pauses for approval after its analysis passed; the server is killed there.
	f = e.writeApp("v2")
	e.must(0, "apply", "-f", f)
	s := e.waitPhase("web", "Paused")
	if s.Rollout.Weight != 30 || s.Rollout.Step != 2 || s.Rollout.Steps != 4 || s.Rollout.Version != "v2" {
		t.Fatalf("paused rollout: %+v", s.Rollout)
	}
	e.stopServer(os.Kill)
	e.startServer()
	if s := e.status("web"); s.Rollout.Phase != "Paused" || s.Rollout.Weight != 30 {
		t.Fatalf("after restart: %+v", s.Rollout)
	}
	e.must(0, "promote", "web")
	e.must(0, "status", "web", "--wait", "--timeout", "20s")
	if s := e.status("web"); s.Stable.Version != "v2" || s.Rollout.Weight != 100 {
		t.Fatalf("after promote: %+v %+v", s.Stable, s.Rollout)
	}

	// v3 is aborted by hand: status --wait reports the rollback with exit 3.
	f = e.writeApp("v3")
	e.must(0, "apply", "-f", f)
	e.waitPhase("web", "Paused")
	e.must(0, "abort", "web", "--reason", "not today")
	e.must(3, "status", "web", "--wait", "--timeout", "20s")
	if s := e.status("web"); s.Stable.Version != "v2" || !strings.Contains(s.Rollout.Reason, "not today") {
		t.Fatalf("after abort: %+v %+v", s.Stable, s.Rollout)
	}

	// Rollback goes to the stable revision before v2, skipping the steps.
	e.must(0, "rollback", "web")
	e.must(0, "status", "web", "--wait", "--timeout", "20s")
	if s := e.status("web"); s.Stable.Version != "v1" {
		t.Fatalf("after rollback: %+v", s.Stable)
	}
	hist := e.must(0, "history", "web")
	for _, want := range []string{"v1", "v2", "v3"} {
		if !strings.Contains(hist, want) {
			t.Fatalf("history lacks %s:\n%s", want, hist)
		}
	}
	evs := e.must(0, "events", "web", "-o", "json")
	for _, want := range []string{`"rollout.aborted"`, `"analysis.measurement"`, `"actor": "local-admin"`} {
		if !strings.Contains(strings.ReplaceAll(evs, `":"`, `": "`), want) {
			t.Fatalf("events lack %s", want)
		}
	}

	// A bad file is rejected with file:line and nothing changes.
	bad := filepath.Join(e.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(strings.ReplaceAll(e2eApp, "VERSION", "v9"), "setWeight: 30", "setWeight: 300", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.run("apply", "-f", bad)
	if code != 1 || !strings.Contains(errOut, "bad.yaml:") || !strings.Contains(errOut, "setWeight") {
		t.Fatalf("apply of a bad file: exit %d\n%s", code, errOut)
	}
	if s := e.status("web"); s.Stable.Version != "v1" || s.Rollout.Phase != "Completed" {
		t.Fatalf("a bad file changed state: %+v", s.Rollout)
	}
}
