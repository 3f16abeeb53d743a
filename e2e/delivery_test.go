package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/slipwaytest"
)

// deliveryFiles are the files of a repository a server applies: two local environments, a
// pipeline through them, and the app in each on its own address. The verification job
// fails version v3; production has an approval and an error budget read from budgetURL.
func deliveryFiles(stagingAddr, prodAddr, budgetURL, version string) map[string]string {
	app := func(env, addr string) string {
		return fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web, environment: %s}
spec:
  replicas: 1
  version: %s
  run: {command: %q, args: ["demo-app", "--port", "${PORT}", "--version", "${VERSION}"]}
  health: {readiness: {http: {path: /healthz}, period: 200ms}}
  traffic: {listen: %q}
  strategy: {rolling: {maxSurge: 1, maxUnavailable: 0}}
`, env, version, bin, addr)
	}
	return map[string]string{
		"deploy/environments.yaml": `apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata: {name: staging}
spec: {target: {kind: local}}
---
apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata: {name: production, labels: {tier: production}}
spec: {target: {kind: local}}
`,
		"deploy/pipeline.yaml": fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: Pipeline
metadata: {name: web}
spec:
  apps: [web]
  stages:
    - name: staging
      environments: [staging]
      verify:
        - name: smoke
          job: {command: sh, args: ["-c", "test \"$SLIPWAY_VERSION\" != v3 || { echo 'checkout smoke test failed'; exit 1; }"]}
      soak: 2s
    - name: production
      environments: [production]
      approval: {role: deployer}
      errorBudget:
        objective: 99
        metric: {provider: {web: {url: %q, jsonPath: "$.ratio"}}}
`, budgetURL),
		"deploy/web-staging.yaml":    app("staging", stagingAddr),
		"deploy/web-production.yaml": app("production", prodAddr),
	}
}

// TestLocal_ContinuousDeployment: a server applies a git repository of its files (two local
// environments, a pipeline, the app in each); a commit that changes the app's version
// becomes a release that is verified and soaked in staging and waits for production's
// approval, where a viewer is refused and a deployer lets it in; a signed webhook delivery
// releases a version whose verification fails, which production never sees; a spent error
// budget holds a release until a fix goes through. (A freeze is held and released on a fake
// clock in package delivery's tests.)
func TestLocal_ContinuousDeployment(t *testing.T) {
	var ratio atomic.Value
	ratio.Store("0.001")
	budget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"ratio": %s}`, ratio.Load().(string))
	}))
	defer budget.Close()

	repoDir := t.TempDir()
	commit := func(msg string, files map[string]string) string {
		t.Helper()
		return slipwaytest.GitCommit(t, repoDir, msg, time.Now(), files)
	}
	stagingAddr, prodAddr := freePort(t), freePort(t)
	commit("web v1 in staging and production", deliveryFiles(stagingAddr, prodAddr, budget.URL, "v1"))

	c := &cluster{t: t, data: t.TempDir(), dir: t.TempDir()}
	secret := filepath.Join(c.dir, "hook.secret")
	if err := os.WriteFile(secret, []byte("e2e-webhook-secret-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.flags = []string{"--git-repo", repoDir, "--git-path", "deploy", "--git-poll", "1h", "--webhook-secret-file", secret}
	c.start()
	t.Cleanup(c.stop)
	for _, env := range []string{"staging", "production"} {
		pid := func() int { return readPIDFile(filepath.Join(c.data, "env", env, "dataplane.pid")) }
		t.Cleanup(func() { killStray(pid()) })
	}

	c.must("git", "sync")
	c.must("-e", "staging", "status", "web", "--wait", "--timeout", "60s")
	c.must("-e", "production", "status", "web", "--wait", "--timeout", "60s")
	for addr, want := range map[string]string{stagingAddr: "v1", prodAddr: "v1"} {
		if v, code := versionAt(t, "http://"+addr+"/"); v != want || code != 200 {
			t.Fatalf("%s answered %q (%d), want %s", addr, v, code, want)
		}
	}

	release := func(id string) slipway.Release {
		t.Helper()
		var r slipway.Release
		if err := json.Unmarshal([]byte(c.must("release", "show", id, "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	waitRelease := func(id, what string, ok func(slipway.Release) bool) slipway.Release {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			r := release(id)
			if ok(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never %s: %+v", id, what, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitsFor := func(text string) func(slipway.Release) bool {
		return func(r slipway.Release) bool {
			return r.Stage == 1 && strings.Contains(r.Stages[1].Waiting, text)
		}
	}

	// A commit that moves the version: one release from git, verified and soaked in staging.
	sha := commit("web v2", deliveryFiles(stagingAddr, prodAddr, budget.URL, "v2"))
	c.must("git", "sync")
	r := waitRelease("web-r1", "waited for production's approval", waitsFor("approval by a deployer"))
	if r.Version != "v2" || r.Source.Trigger != "git" || r.Source.Commit != sha {
		t.Fatalf("release from git: %+v", r)
	}
	if st := r.Stages[0]; st.State != slipway.StagePassed || len(st.Verified) != 1 || st.SoakUntil == nil || st.PassedAt.Before(*st.SoakUntil) {
		t.Fatalf("staging stage: %+v; want verified and passed after its soak", st)
	}
	if v, _ := versionAt(t, "http://"+stagingAddr+"/"); v != "v2" {
		t.Fatalf("staging answers %q, want v2", v)
	}
	if v, _ := versionAt(t, "http://"+prodAddr+"/"); v != "v1" {
		t.Fatalf("production answers %q before the approval, want v1", v)
	}
	viewer := strings.TrimSpace(c.must("token", "create", "watcher", "--role", "viewer"))
	deployer := strings.TrimSpace(c.must("token", "create", "oncall", "--role", "deployer"))
	if _, code := c.cli("--token", viewer, "release", "approve", "web-r1"); code == 0 {
		t.Fatal("a viewer approved a release")
	}
	c.must("--token", deployer, "release", "approve", "web-r1", "--reason", "staging is fine")
	r = waitRelease("web-r1", "completed", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })
	if a := r.Stages[1].Approvals; len(a) != 1 || a[0].Actor != "oncall" {
		t.Fatalf("approvals: %+v", a)
	}
	if v, _ := versionAt(t, "http://"+prodAddr+"/"); v != "v2" {
		t.Fatalf("production answers %q after the release, want v2", v)
	}

	// A signed webhook delivery releases v3, whose verification fails: it stops in staging.
	body := `{"app":"web","version":"v3","commit":"c0ffee"}`
	mac := hmac.New(sha256.New, []byte("e2e-webhook-secret-0123456789"))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, c.server+"/hooks/releases", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Slipway-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Slipway-Delivery", "delivery-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(answer), "web-r2") {
		t.Fatalf("webhook: %d %s", resp.StatusCode, answer)
	}
	r = waitRelease("web-r2", "aborted", func(r slipway.Release) bool { return r.Phase.Terminal() })
	if r.Phase != slipway.PhaseAborted || r.Stage != 0 || !strings.Contains(r.Reason, "checkout smoke test failed") || r.Source.Trigger != "webhook" {
		t.Fatalf("release from the webhook: %+v", r)
	}
	if v, _ := versionAt(t, "http://"+prodAddr+"/"); v != "v2" {
		t.Fatalf("production answers %q after a failed release, want v2", v)
	}

	// The budget is spent: v4 waits at production's gate; a fix goes through (approved).
	ratio.Store("0.05")
	c.must("release", "web", "--version", "v4")
	waitRelease("web-r3", "held by the spent budget", waitsFor("error budget 500% spent"))
	c.must("release", "web", "--version", "v4-fix", "--fix")
	waitRelease("web-r4", "waited for its approval", waitsFor("approval by a deployer"))
	if r3 := release("web-r3"); r3.Phase != slipway.PhaseAborted || r3.SupersededBy != "web-r4" {
		t.Fatalf("the held release: %+v; want superseded by the fix", r3)
	}
	c.must("--token", deployer, "release", "approve", "web-r4")
	waitRelease("web-r4", "completed", func(r slipway.Release) bool { return r.Phase == slipway.PhaseCompleted })
	if v, _ := versionAt(t, "http://"+prodAddr+"/"); v != "v4-fix" {
		t.Fatalf("production answers %q after the fix, want v4-fix", v)
	}
	if out := c.must("pipeline", "status", "web"); !strings.Contains(out, "passed:  web-r4 web v4-fix") {
		t.Errorf("pipeline status:\n%s", out)
	}
}

// killStray kills a data plane a failed test left running.
func killStray(pid int) {
	if alive(pid) {
		p, err := os.FindProcess(pid)
		if err == nil {
			_ = p.Kill()
		}
	}
}
