package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/slipwaytest"
)

// e2eGitApp is app web's document in environment env at version.
func e2eGitApp(env, version string) string {
	return "apiVersion: slipway.dev/v1alpha1\nkind: App\nmetadata: {name: web, environment: " + env + "}\nspec:\n" +
		"  replicas: 2\n  version: " + version + "\n  run: {command: ./web}\n  strategy: {rolling: {}}\n"
}

// TestE2E_GitSource: a server started with --git-repo applies the branch's head as it
// starts, and later commits when `slipway git sync` asks: the first creates the
// environments, the pipeline and the app;
// the next one's new version of web becomes a release with the commit as its source; an
// invalid one is refused with its file:line and changes nothing; a viewer may not sync; a
// restarted server does not apply the last commit again.
func TestE2E_GitSource(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	repo := filepath.Join(e.dir, "repo")
	e.serverFlags = []string{"--git-repo", repo, "--git-branch", "main", "--git-path", "deploy", "--git-poll", "1h"}
	slipwaytest.GitCommit(t, repo, "first", time.Now(), map[string]string{"deploy/environments.yaml": e2eEnvironments, "deploy/pipeline.yaml": e2ePipeline,
		"deploy/web-staging.yaml": e2eGitApp("staging", "v1"), "deploy/web-production.yaml": e2eGitApp("production", "v1")})
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })

	// The server looks at the branch as it starts (and then every --git-poll, an hour here):
	// it applies the first commit by itself. Later commits are applied by `git sync`.
	slipwaytest.Eventually(t, 20*time.Second, "the first commit applied at start", func() bool {
		out, _, code := e.run("events", "-o", "json")
		return code == 0 && strings.Contains(out, slipway.EventGitApplied)
	})
	if out := e.must(0, "git", "sync"); !strings.Contains(out, "handled already") {
		t.Fatalf("git sync after the first commit was applied:\n%s", out)
	}
	if out := e.must(0, "get", "pipelines"); !strings.Contains(out, "staging(staging) -> production(production)") {
		t.Errorf("get pipelines:\n%s", out)
	}
	for _, env := range []string{"staging", "production"} {
		e.must(0, "-e", env, "status", "web", "--wait", "--timeout", "20s")
	}

	second := slipwaytest.GitCommit(t, repo, "web v2", time.Now(), map[string]string{"deploy/web-staging.yaml": e2eGitApp("staging", "v2"), "deploy/web-production.yaml": e2eGitApp("production", "v2")})
	var s slipway.GitSync
	if err := json.Unmarshal([]byte(e.must(0, "git", "sync", "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	if s.Result != slipway.GitApplied || s.Commit != second || len(s.Releases) != 1 {
		t.Fatalf("git sync of web v2: %+v", s)
	}
	var r slipway.Release
	if err := json.Unmarshal([]byte(e.must(0, "release", "show", s.Releases[0], "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Version != "v2" || r.Source.Commit != second || r.Source.Trigger != "git" {
		t.Errorf("release: %+v", r)
	}
	if v := e.statusIn("production", "web"); v.Stable == nil || v.Stable.Version != "v1" || (v.Rollout != nil && v.Rollout.Version == "v2") {
		t.Errorf("production's web: %+v; the commit must not apply it there", v)
	}

	bad := slipwaytest.GitCommit(t, repo, "typo", time.Now(), map[string]string{"deploy/web-staging.yaml": strings.Replace(e2eGitApp("staging", "v3"), "replicas", "replicaz", 1)})
	out, _, code := e.run("git", "sync")
	if code != 1 || !strings.Contains(out, "deploy/web-staging.yaml:5:3: spec.replicaz") || !strings.Contains(out, bad[:12]) {
		t.Errorf("git sync of an invalid commit: exit %d\n%s", code, out)
	}
	if out := e.must(0, "events", "-o", "json"); !strings.Contains(out, slipway.EventGitInvalid) || !strings.Contains(out, "deploy/web-staging.yaml:5:3") {
		t.Errorf("events do not record the refusal:\n%s", out)
	}

	viewer := strings.TrimSpace(e.must(0, "token", "create", "reader", "--role", "viewer"))
	if _, stderr, code := e.runWith([]string{envToken + "=" + viewer}, "git", "sync"); code == 0 || !strings.Contains(stderr, "needs role deployer") {
		t.Errorf("a viewer's git sync: exit %d, %s", code, stderr)
	}

	e.stopServer(os.Interrupt)
	e.startServer()
	if out := e.must(0, "git", "sync"); !strings.Contains(out, "handled already") {
		t.Errorf("git sync after a restart:\n%s", out)
	}
	if out := e.must(0, "releases", "web", "-o", "json"); strings.Count(out, `"id"`) != 1 {
		t.Errorf("releases after a restart:\n%s", out)
	}
}
