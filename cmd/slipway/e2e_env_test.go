package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2E_Environments: the default environment answers at the root and under -e default;
// another environment is refused with its name, both by the CLI and by plan and apply of a
// file that names it, and nothing is applied.
func TestE2E_Environments(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })

	f := e.writeApp("v1")
	e.must(0, "-e", "default", "apply", "-f", f)
	if out := e.must(0, "-e", "default", "get", "apps"); !strings.Contains(out, "web") {
		t.Errorf("get apps in the default environment:\n%s", out)
	}
	out := e.must(0, "get", "environments")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "default sim -" {
		t.Errorf("get environments:\n%s", out)
	}
	if out := e.must(0, "get", "environments", "-o", "json"); !strings.Contains(out, `"kind": "sim"`) {
		t.Errorf("get environments -o json:\n%s", out)
	}
	if _, stderr, code := e.run("-e", "staging", "get", "apps"); code != exitError || !strings.Contains(stderr, "environment staging does not exist") {
		t.Errorf("-e staging: exit %d, %q", code, stderr)
	}
	if _, stderr, code := e.run("-e", "Not_Valid", "get", "apps"); code != exitError || !strings.Contains(stderr, "--env") {
		t.Errorf("-e Not_Valid: exit %d, %q", code, stderr)
	}
	if _, stderr, code := e.runWith([]string{envEnv + "=staging"}, "get", "apps"); code != exitError || !strings.Contains(stderr, "environment staging does not exist") {
		t.Errorf("SLIPWAY_ENV=staging: exit %d, %q", code, stderr)
	}

	// A file that puts the app in another environment is refused by plan and apply.
	other := filepath.Join(e.dir, "other.yaml")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "metadata:\n  name: web\n", "metadata:\n  name: api\n  environment: staging\n", 1)
	if doc == string(b) {
		t.Fatalf("the app file has no metadata to edit:\n%s", b)
	}
	if err := os.WriteFile(other, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "apply"} {
		if _, stderr, code := e.run(cmd, "-f", other); code != exitError || !strings.Contains(stderr, "environment staging does not exist; declare it (kind: Environment)") {
			t.Errorf("%s of an app of environment staging: exit %d, %q", cmd, code, stderr)
		}
	}
	if out := e.must(0, "get", "apps"); strings.Contains(out, "api") {
		t.Errorf("the refused app was applied:\n%s", out)
	}

	// Two environments declared, then the same app file applied to staging by -e: an app
	// of its own there, while default keeps its version.
	envs := filepath.Join(e.dir, "environments.yaml")
	if err := os.WriteFile(envs, []byte(e2eEnvironments), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := e.must(2, "plan", "-f", envs); !strings.Contains(out, "+ Environment staging (create)") || !strings.Contains(out, "+ Environment production (create)") {
		t.Errorf("plan of the environments:\n%s", out)
	}
	e.must(0, "apply", "-f", envs)
	e.must(0, "plan", "-f", envs) // nothing left to change
	out = e.must(0, "get", "environments")
	for _, want := range []string{"default", "production", "staging"} {
		if !strings.Contains(out, want) {
			t.Errorf("get environments lacks %s:\n%s", want, out)
		}
	}
	e.must(0, "-e", "staging", "apply", "-f", e.writeApp("v2"))
	e.must(0, "-e", "staging", "status", "web", "--wait", "--timeout", "20s")
	if v := e.statusIn("staging", "web").Stable.Version; v != "v2" {
		t.Errorf("web in staging runs %q, want v2", v)
	}
	if v := e.status("web").Stable.Version; v != "v1" {
		t.Errorf("web in default runs %q after staging's apply, want v1", v)
	}
	// The file that names staging now applies from the default environment's address, and
	// plan and apply name the environment.
	if out := e.must(0, "apply", "-f", other); !strings.Contains(out, "App api in staging (create)") {
		t.Errorf("apply of api in staging:\n%s", out)
	}
	if out := e.must(0, "-e", "staging", "get", "apps"); !strings.Contains(out, "api") || !strings.Contains(out, "web") {
		t.Errorf("get apps in staging:\n%s", out)
	}
	if out := e.must(0, "-e", "production", "get", "apps"); strings.Contains(out, "web") || strings.Contains(out, "api") {
		t.Errorf("get apps in production:\n%s", out)
	}
	if out := e.must(0, "get", "apps"); strings.Contains(out, "api") {
		t.Errorf("api landed in default:\n%s", out)
	}
	if out := e.must(0, "-e", "staging", "events", "api", "-o", "json"); !strings.Contains(out, `"environment": "staging"`) || !strings.Contains(out, "app.created") {
		t.Errorf("staging's events of api do not carry the environment:\n%s", out)
	}
	if out := e.must(0, "events"); !strings.Contains(out, "environment staging created") {
		t.Errorf("default's events lack the environment's creation:\n%s", out)
	}
	// A changed target is refused whole.
	changed := filepath.Join(e.dir, "changed.yaml")
	if err := os.WriteFile(changed, []byte(strings.Replace(e2eEnvironments, "kind: sim", "kind: local", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.run("apply", "-f", changed); code != exitError || !strings.Contains(stderr, "its target cannot change") {
		t.Errorf("apply of a changed target: exit %d, %q", code, stderr)
	}

	// The environments and their apps outlive the server.
	e.stopServer(os.Interrupt)
	e.startServer()
	if out := e.must(0, "-e", "staging", "get", "apps"); !strings.Contains(out, "api") || !strings.Contains(out, "web") {
		t.Errorf("get apps in staging after a restart:\n%s", out)
	}
	e.must(0, "-e", "staging", "status", "web", "--wait", "--timeout", "20s")
}

const e2eEnvironments = `apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata:
  name: staging
  labels: {tier: staging}
spec:
  target: {kind: sim}
---
apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata:
  name: production
  labels: {tier: production}
spec:
  target: {kind: sim}
`

// statusIn is status of app in environment env.
func (e *e2e) statusIn(env, app string) statusJSON {
	e.t.Helper()
	var s statusJSON
	if err := json.Unmarshal([]byte(e.must(0, "-e", env, "status", app, "-o", "json")), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}
