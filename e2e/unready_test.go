package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unreadyApp writes an App running the demo service at version whose readiness check fails
// while the file unready exists (an exec probe), and returns its path.
func (c *cluster) unreadyApp(name, listen, version, unready, strategy string, replicas int) string {
	c.t.Helper()
	doc := fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: %s}
spec:
  replicas: %d
  version: %s
  run: {command: %q, args: ["demo-app", "--port", "${PORT}", "--version", %q]}
  health:
    readiness:
      exec: {command: ["sh", "-c", %q]}
      period: 200ms
      failureThreshold: 1
  traffic: {listen: %q}
  strategy:
%s
`, name, replicas, version, bin, version, "test ! -e '"+unready+"'", listen, strategy)
	p := filepath.Join(c.dir, name+"-"+version+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// readyOf returns how many ready instances version has in s.
func readyOf(s status, version string) int {
	n := 0
	for _, l := range s.Live {
		if l.Version == version {
			n += l.Ready
		}
	}
	return n
}

// waitAnswers waits until the load has sent n more requests, so that what it counted covers
// a stretch of time after the call.
func (l *load) waitAnswers(t *testing.T, n int64) {
	t.Helper()
	want := l.total.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.total.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the load sent %d requests in 30s, want %d", l.total.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventKinds returns the kinds and messages of app's events, oldest first.
func (c *cluster) eventKinds(app string) []string {
	c.t.Helper()
	var evs []struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(c.must("events", app, "--limit", "0", "-o", "json")), &evs); err != nil {
		c.t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Kind + ": " + e.Message
	}
	return out
}

// An abort while the stable revision has no ready instance must not send users to it: the
// ready canary keeps serving (no 503), the events say traffic is held, and once stable is
// ready again traffic moves to it and the canary goes.
func TestLocal_AbortWhileStableUnready(t *testing.T) {
	strategy := `    canary:
      steps:
        - setWeight: 50
        - pause: {}`
	c := newCluster(t)
	listen := freePort(t)
	unready := filepath.Join(c.dir, "v1-unready")
	c.must("apply", "-f", c.unreadyApp("web", listen, "v1", unready, strategy, 2), "--wait", "--timeout", "60s")
	l := startLoad(t, "http://"+listen+"/", loadRate)
	l.waitAnswers(t, 100)

	c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 2))
	c.waitFor("web", "paused at 50%", func(s status) bool {
		return s.Rollout.Phase == "Paused" && s.Rollout.Weight == 50 && readyOf(s, "v2") == 1
	})
	if err := os.WriteFile(unready, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c.waitFor("web", "stable unready", func(s status) bool { return readyOf(s, "v1") == 0 })
	l.waitAnswers(t, 100)
	if f := l.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed before the abort: %q", f, l.failures)
	}

	c.must("abort", "web", "--reason", "stable unready")
	l.waitAnswers(t, 500) // two seconds of load after the abort
	s := c.status("web")
	if f := l.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed after an abort while stable had no ready instance (v2 still has %d ready): %q",
			f, readyOf(s, "v2"), l.failures)
	}
	if s.Rollout.Phase != "Aborted" || readyOf(s, "v2") == 0 {
		t.Fatalf("after the abort: rollout %s, v2 ready %d; want Aborted with the canary still serving", s.Rollout.Phase, readyOf(s, "v2"))
	}
	held := strings.Join(c.eventKinds("web"), "\n")
	if !strings.Contains(held, "traffic.held") {
		t.Errorf("no traffic.held event after the abort:\n%s", held)
	}

	if err := os.Remove(unready); err != nil {
		t.Fatal(err)
	}
	c.waitFor("web", "only v1 running", func(s status) bool {
		return len(s.Live) == 1 && s.Live[0].Version == "v1" && s.Live[0].Ready == 2
	})
	before, _ := l.counts()
	l.waitAnswers(t, 250)
	after, _ := l.counts()
	total, failed, _ := l.report(t, "abort while stable unready")
	if failed != 0 {
		t.Errorf("%d of %d requests failed", failed, total)
	}
	if after["v2"] != before["v2"] || after["v1"] <= before["v1"] {
		t.Errorf("once stable was ready: v2 answered %d more requests, v1 %d; want all on v1", after["v2"]-before["v2"], after["v1"]-before["v1"])
	}
	evs := strings.Join(c.eventKinds("web"), "\n")
	if !strings.Contains(evs, "traffic.released") {
		t.Errorf("no traffic.released event once stable was ready:\n%s", evs)
	}
}
