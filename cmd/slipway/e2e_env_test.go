package main

import (
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
		if _, stderr, code := e.run(cmd, "-f", other); code != exitError || !strings.Contains(stderr, "the app is in environment staging") {
			t.Errorf("%s of an app of environment staging: exit %d, %q", cmd, code, stderr)
		}
	}
	if out := e.must(0, "get", "apps"); strings.Contains(out, "api") {
		t.Errorf("the refused app was applied:\n%s", out)
	}
}
