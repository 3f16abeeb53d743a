package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
)

const e2ePipeline = `apiVersion: slipway.dev/v1alpha1
kind: Pipeline
metadata: {name: web}
spec:
  apps: [web]
  stages:
    - name: staging
      environments: [staging]
      verify:
        - name: smoke
          job: {command: sh, args: ["-c", "test \"$SLIPWAY_VERSION\" = v2"]}
    - name: production
      environments: [production]
      approval: {role: deployer}
`

// TestE2E_ReleaseThroughAPipeline: environments, a pipeline and the app in each are applied
// from files; `slipway release` sends v2 through staging (verified) to production's gate,
// where a viewer's approval is refused and the admin's lets it in; `release show`,
// `releases` and `pipeline status` tell the journey.
func TestE2E_ReleaseThroughAPipeline(t *testing.T) {
	e := &e2e{t: t, bin: slipwayBin(t), data: t.TempDir(), dir: t.TempDir()}
	secretFile := filepath.Join(e.dir, "hook.secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.serverFlags = []string{"--webhook-secret-file", secretFile}
	e.startServer()
	t.Cleanup(func() { e.stopServer(os.Interrupt) })

	// A receiver of the releases' events, as a team's chat would be.
	var mu sync.Mutex
	var notes []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		notes = append(notes, string(b))
		mu.Unlock()
	}))
	defer recv.Close()
	notification := "---\napiVersion: slipway.dev/v1alpha1\nkind: Notification\nmetadata: {name: chat}\nspec:\n  url: " + recv.URL +
		"\n  format: slack\n  kinds: [\"release.*\"]\n"
	files := map[string]string{"environments.yaml": e2eEnvironments, "pipeline.yaml": e2ePipeline + notification}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.must(0, "validate", "-f", filepath.Join(e.dir, "pipeline.yaml"))
	out := e.must(0, "apply", "-f", filepath.Join(e.dir, "environments.yaml"), "-f", filepath.Join(e.dir, "pipeline.yaml"))
	if !strings.Contains(out, "+ Pipeline web (create)") || !strings.Contains(out, "+ Notification chat (create)") {
		t.Errorf("apply output:\n%s", out)
	}
	app := filepath.Join(e.dir, "web-rolling.yaml")
	rolling := strings.Replace(strings.ReplaceAll(e2eApp, "VERSION", "v1"), `  strategy:
    canary:
      steps:
        - setWeight: 30
        - analysis: {templates: [smoke]}
        - pause: {}
        - setWeight: 60
`, "  strategy: {rolling: {}}\n", 1)
	if !strings.Contains(rolling, "rolling: {}") {
		t.Fatalf("the app file has no canary to replace:\n%s", rolling)
	}
	if err := os.WriteFile(app, []byte(rolling), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"staging", "production"} {
		e.must(0, "-e", env, "apply", "-f", app)
		e.must(0, "-e", env, "status", "web", "--wait", "--timeout", "20s")
	}
	if out := e.must(0, "get", "pipelines"); !strings.Contains(out, "staging(staging) -> production(production)") {
		t.Errorf("get pipelines:\n%s", out)
	}
	out = e.must(0, "release", "web", "--version", "v2", "--commit", "4f2a9c1", "--url", "https://ci.example/runs/7")
	if !strings.Contains(out, "release web-r1: web v2 through pipeline web") {
		t.Fatalf("release output:\n%s", out)
	}
	show := func() slipway.Release {
		var r slipway.Release
		if err := json.Unmarshal([]byte(e.must(0, "release", "show", "web-r1", "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	deadline := time.Now().Add(30 * time.Second)
	for r := show(); r.Stage != 1 || !strings.Contains(r.Stages[1].Waiting, "approval by a deployer"); r = show() {
		if time.Now().After(deadline) || r.Phase.Terminal() {
			t.Fatalf("release never waited for production's approval: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := e.must(0, "pipeline", "status", "web"); !strings.Contains(out, "waits:   production: approval by a deployer") || !strings.Contains(out, "passed:  web-r1 web v2") {
		t.Errorf("pipeline status:\n%s", out)
	}
	viewer := strings.TrimSpace(e.must(0, "token", "create", "watcher", "--role", "viewer"))
	if _, stderr, code := e.runWith([]string{envToken + "=" + viewer}, "release", "approve", "web-r1"); code == 0 || !strings.Contains(stderr, "forbidden") && !strings.Contains(stderr, "deployer") {
		t.Errorf("a viewer's approval: exit %d, %s", code, stderr)
	}
	e.must(0, "release", "approve", "web-r1", "--reason", "staging looks good")
	deadline = time.Now().Add(30 * time.Second)
	for r := show(); r.Phase != slipway.PhaseCompleted; r = show() {
		if time.Now().After(deadline) || r.Phase.Terminal() {
			t.Fatalf("release never completed: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := e.statusIn("production", "web").Stable.Version; v != "v2" {
		t.Errorf("production runs %q, want v2", v)
	}
	out = e.must(0, "release", "show", "web-r1")
	for _, want := range []string{"Source:    cli, commit 4f2a9c1, https://ci.example/runs/7", "verified: smoke", "approved by local-admin", "staging looks good", "Phase:     Completed"} {
		if !strings.Contains(out, want) {
			t.Errorf("release show lacks %q:\n%s", want, out)
		}
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(notes, "\n")
		mu.Unlock()
		if strings.Contains(got, "release web-r1: web v2 went through every stage (release.completed") {
			if strings.Contains(got, "rollout.") {
				t.Errorf("the chat got events its kinds filter out:\n%s", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chat never heard of the release's completion; it got:\n%s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := e.must(0, "notifications", "log", "chat"); !strings.Contains(out, "release.completed") || !strings.Contains(out, "delivered") {
		t.Errorf("notifications log chat:\n%s", out)
	}
	if out := e.must(0, "releases", "web"); !strings.Contains(out, "web-r1") || !strings.Contains(out, "Completed") {
		t.Errorf("releases:\n%s", out)
	}
	// Delivery insights of the real server: production (tier: production) had two
	// deployments of web, the apply of v1 and the release of v2 (with a lead time).
	out, stderr, code := e.runWith([]string{envToken + "=" + viewer}, "-e", "production", "insights", "-o", "json")
	var in slipway.Insights
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil {
		t.Fatalf("insights: exit %d, %s %s", code, out, stderr)
	}
	if h := in.Headline; h == nil || h.Deployments != 2 || h.Failures != 0 || h.LeadTime == nil || h.LeadTime.Count != 1 ||
		len(in.Deployments) != 2 || in.Deployments[1].Release != "web-r1" || in.Deployments[1].Version != "v2" {
		t.Errorf("insights of production:\n%s", out)
	}
	req, err := http.NewRequest(http.MethodGet, e.server+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+viewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{`slipway_deployments{app="web",environment="production"} 2`, `slipway_deployments{app="web",environment="staging"} 2`} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if out := e.must(0, "events", "web"); !strings.Contains(out, "release.created") && !strings.Contains(out, "created for pipeline web") {
		t.Errorf("events lack the release:\n%s", out)
	}

	// A signed webhook delivery starts the next release, once; an unsigned one is refused.
	hook := func(body, sig, id string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, e.server+"/hooks/releases", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if sig != "" {
			req.Header.Set("X-Slipway-Signature", sig)
		}
		req.Header.Set("X-Slipway-Delivery", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	body := `{"app":"web","version":"v3","commit":"77aa01"}`
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(body))
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if code, out := hook(body, "", "h-0"); code != http.StatusUnauthorized {
		t.Errorf("unsigned delivery: %d %s", code, out)
	}
	if code, out := hook(body, sig, "h-1"); code != http.StatusCreated || !strings.Contains(out, "web-r2") {
		t.Fatalf("signed delivery: %d %s", code, out)
	}
	if code, out := hook(body, sig, "h-1"); code != http.StatusOK || !strings.Contains(out, "duplicate") {
		t.Errorf("replayed delivery: %d %s", code, out)
	}
	if out := e.must(0, "releases", "web"); strings.Count(out, "web-r") != 2 {
		t.Errorf("releases after the webhook:\n%s", out)
	}
}

const hookSecret = "a-webhook-secret-of-some-length"
