package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2E_AnEnvironmentThatCannotStart: a server whose stored environment cannot start (its
// store damaged) still starts and serves the default environment and the others; the
// broken one is listed, and every command about it says why it is unavailable. Once its
// store is restored, the next start serves it with its apps.
func TestE2E_AnEnvironmentThatCannotStart(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })
	envs := filepath.Join(e.dir, "environments.yaml")
	if err := os.WriteFile(envs, []byte(e2eEnvironments), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must(0, "apply", "-f", envs)
	e.must(0, "apply", "-f", e.writeApp("v1"))
	e.must(0, "-e", "staging", "apply", "-f", e.writeApp("v1"))
	e.must(0, "-e", "production", "apply", "-f", e.writeApp("v1"))
	e.must(0, "-e", "staging", "status", "web", "--wait", "--timeout", "20s")
	e.stopServer(os.Interrupt)

	db := filepath.Join(e.data, envDirName, "staging", "slipway.db")
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.startServer()
	if out := e.must(0, "get", "apps"); !strings.Contains(out, "web") {
		t.Errorf("default's apps with staging broken:\n%s", out)
	}
	if out := e.must(0, "-e", "production", "get", "apps"); !strings.Contains(out, "web") {
		t.Errorf("production's apps with staging broken:\n%s", out)
	}
	if out := e.must(0, "get", "environments"); !strings.Contains(out, "staging") {
		t.Errorf("get environments lacks the broken staging:\n%s", out)
	}
	for _, args := range [][]string{{"-e", "staging", "get", "apps"}, {"apply", "-f", e.inEnv("staging", e.writeApp("v2"))}} {
		if _, stderr, code := e.run(args...); code != exitError || !strings.Contains(stderr, "environment staging could not start") {
			t.Errorf("slipway %s with staging broken: exit %d, %q", strings.Join(args, " "), code, stderr)
		}
	}
	e.stopServer(os.Interrupt)

	if err := os.WriteFile(db, good, 0o600); err != nil {
		t.Fatal(err)
	}
	e.startServer()
	e.must(0, "-e", "staging", "status", "web", "--wait", "--timeout", "20s")

	// A store that went missing is not started empty (its apps and history would be gone
	// without a word): the environment is unavailable until the store is restored.
	e.stopServer(os.Interrupt)
	moved := filepath.Join(e.dir, "staging.db")
	if err := os.Rename(db, moved); err != nil {
		t.Fatal(err)
	}
	e.startServer()
	if _, stderr, code := e.run("-e", "staging", "get", "apps"); code != exitError || !strings.Contains(stderr, "is missing") {
		t.Errorf("staging with its store missing: exit %d, %q", code, stderr)
	}
	e.stopServer(os.Interrupt)
	if err := os.Rename(moved, db); err != nil {
		t.Fatal(err)
	}
	e.startServer()
	if out := e.must(0, "-e", "staging", "get", "apps"); !strings.Contains(out, "web") {
		t.Errorf("staging's apps after its store came back:\n%s", out)
	}
}

// inEnv writes a copy of the app file at path with the app in environment env.
func (e *e2e) inEnv(env, path string) string {
	e.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	doc := strings.Replace(string(b), "metadata:\n  name: web\n", "metadata:\n  name: web\n  environment: "+env+"\n", 1)
	if doc == string(b) {
		e.t.Fatalf("the app file has no metadata to edit:\n%s", b)
	}
	out := filepath.Join(e.dir, env+"-"+filepath.Base(path))
	if err := os.WriteFile(out, []byte(doc), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return out
}
