package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadRate is the steady load every scenario runs under, in requests per second.
const loadRate = 250

// rollout deploys v1, puts steady load on it, runs during (which starts and drives the move
// to v2), and checks that users saw no failed request.
func rollout(t *testing.T, name, strategy string, during func(c *cluster, listen string)) map[string]int64 {
	t.Helper()
	c := newCluster(t)
	listen := freePort(t)
	c.must("apply", "-f", c.appFile("web", listen, "v1", strategy, 3), "--wait", "--timeout", "60s")
	l := startLoad(t, "http://"+listen+"/", loadRate)
	start := time.Now()
	time.Sleep(time.Second) // a load window: a second of v1 alone under load
	during(c, listen)
	time.Sleep(time.Second) // a load window: a second on the end state under load
	total, failed, byVer := l.report(t, name)
	t.Logf("%s: %.0f requests/s over %s", name, float64(total)/time.Since(start).Seconds(), time.Since(start).Round(time.Millisecond))
	if failed != 0 {
		t.Errorf("%s: %d of %d requests failed", name, failed, total)
	}
	if byVer["v1"] == 0 {
		t.Errorf("%s: no request reached v1: %v", name, byVer)
	}
	return byVer
}

func TestLocal_RollingUpdateUnderLoad(t *testing.T) {
	strategy := "    rolling: {maxSurge: 1, maxUnavailable: 0}"
	byVer := rollout(t, "rolling", strategy, func(c *cluster, listen string) {
		c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 3), "--wait", "--timeout", "60s")
		if s := c.status("web"); s.Stable.Version != "v2" {
			t.Fatalf("stable after rolling update: %+v", s.Stable)
		}
	})
	if byVer["v2"] == 0 {
		t.Errorf("no request reached v2: %v", byVer)
	}
}

func TestLocal_BlueGreenUnderLoad(t *testing.T) {
	strategy := "    blueGreen: {autoPromote: true, scaleDownDelay: 1s}"
	byVer := rollout(t, "blue-green", strategy, func(c *cluster, listen string) {
		c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 3), "--wait", "--timeout", "60s")
		if s := c.status("web"); s.Stable.Version != "v2" {
			t.Fatalf("stable after blue-green: %+v", s.Stable)
		}
		time.Sleep(1500 * time.Millisecond) // past scaleDownDelay: the old revision goes under load
	})
	if byVer["v2"] == 0 {
		t.Errorf("no request reached v2: %v", byVer)
	}
}

const canarySteps = `    canary:
      steps:
        - setWeight: 25
        - pause: {duration: 1s}
        - setWeight: 75
        - pause: {duration: 1s}`

func TestLocal_CanaryPromotedUnderLoad(t *testing.T) {
	byVer := rollout(t, "canary", canarySteps, func(c *cluster, listen string) {
		c.must("apply", "-f", c.appFile("web", listen, "v2", canarySteps, 3), "--wait", "--timeout", "60s")
		s := c.status("web")
		if s.Stable.Version != "v2" {
			t.Fatalf("stable after canary: %+v", s.Stable)
		}
		// Each instance's output is kept and shown by `slipway logs`.
		logs := c.must("logs", "web", "--revision", s.Stable.Revision, "--tail", "5")
		if n := strings.Count(logs, "demo-app v2 listening"); n != 3 {
			t.Fatalf("logs of the 3 v2 instances:\n%s", logs)
		}
	})
	if byVer["v2"] == 0 {
		t.Errorf("no request reached v2: %v", byVer)
	}
}

func TestLocal_ManualAbortUnderLoad(t *testing.T) {
	strategy := `    canary:
      steps:
        - setWeight: 50
        - pause: {}`
	rollout(t, "manual abort", strategy, func(c *cluster, listen string) {
		c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 3))
		c.waitFor("web", "paused at 50%", func(s status) bool { return s.Rollout.Phase == "Paused" && s.Rollout.Weight == 50 })
		time.Sleep(time.Second) // a load window: a second split 50/50 under load
		c.must("abort", "web", "--reason", "e2e")
		if _, code := c.cli("status", "web", "--wait", "--timeout", "60s"); code != 3 {
			t.Fatalf("status --wait after abort: exit %d, want 3", code)
		}
		c.waitFor("web", "only v1 running", func(s status) bool {
			return len(s.Live) == 1 && s.Live[0].Version == "v1" && s.Live[0].Ready == 3
		})
	})
}

func TestLocal_InstanceKilledMidRollout(t *testing.T) {
	strategy := `    canary:
      steps:
        - setWeight: 50
        - pause: {duration: 3s}
        - setWeight: 80
        - pause: {duration: 1s}`
	rollout(t, "SIGKILL mid-rollout", strategy, func(c *cluster, listen string) {
		c.must("apply", "-f", c.appFile("web", listen, "v2", strategy, 3))
		s := c.waitFor("web", "canary at 50%", func(s status) bool { return s.Rollout.Weight == 50 && s.Rollout.Step == 1 })
		var victim string
		for _, l := range s.Live {
			if l.Version == "v2" && len(l.List) > 0 {
				victim = l.List[0].Address
			}
		}
		pid := pidListeningOn(t, victim)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		t.Logf("killed instance %s (pid %d) with SIGKILL", victim, pid)
		if _, code := c.cli("status", "web", "--wait", "--timeout", "60s"); code != 0 {
			t.Fatalf("rollout did not complete after an instance was killed: exit %d", code)
		}
		restarts := 0
		for _, l := range c.status("web").Live {
			for _, in := range l.List {
				restarts += in.Restarts
			}
		}
		if restarts == 0 {
			t.Errorf("the killed instance was not restarted")
		}
	})
}

// pidListeningOn finds the demo-app process started with the port of addr.
func pidListeningOn(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("instance address %q has no port", addr)
	}
	port := addr[i+1:]
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for j := 0; j+1 < len(args); j++ {
			if args[j] == "--port" && args[j+1] == port && strings.Contains(strings.Join(args, " "), "demo-app") {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				return pid
			}
		}
	}
	t.Fatalf("no demo-app process on port %s", port)
	return 0
}

// errorRateTemplate fails a canary whose error rate, as the proxy counts it (the builtin
// provider), reaches 5% in any measurement.
const errorRateTemplate = `apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
    - name: canary-error-rate
      interval: 500ms
      successCondition: "result < 0.05"
      failureLimit: 0
      inconclusiveLimit: 3
      provider:
        builtin: {metric: error_rate, revision: "{{canary.revision}}", window: 2s}
`

// A canary that fails 20% of its requests is rolled back by its analysis, by itself: the
// only errors users see are the bad canary's own answers before the rollback, none from the
// proxy, and none from stable; after the rollback no request reaches the canary.
func TestLocal_CanaryAbortedByAnalysisUnderLoad(t *testing.T) {
	strategy := `    canary:
      steps:
        - setWeight: 20
        - pause: {duration: 30s}
  analysis:
    templates: [error-rate]`
	c := newCluster(t)
	listen := freePort(t)
	tmpl := filepath.Join(c.dir, "error-rate.yaml")
	if err := os.WriteFile(tmpl, []byte(errorRateTemplate), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("apply", "-f", tmpl, "-f", c.appFile("web", listen, "v1", strategy, 3), "--wait", "--timeout", "60s")
	l := startLoad(t, "http://"+listen+"/", loadRate)
	start := time.Now()
	time.Sleep(time.Second) // a load window: a second of v1 alone under load
	c.must("apply", "-f", tmpl, "-f", c.appFile("web", listen, "v2", strategy, 3, "--error-rate", "0.2"))
	if _, code := c.cli("status", "web", "--wait", "--timeout", "60s"); code != 3 {
		t.Fatalf("status --wait for the bad canary: exit %d, want 3 (aborted)", code)
	}
	s := c.status("web")
	if s.Stable.Version != "v1" || s.Rollout.Phase != "Aborted" || !strings.Contains(s.Rollout.Reason, "canary-error-rate") {
		t.Fatalf("after the bad canary: stable %+v, rollout %s %q", s.Stable, s.Rollout.Phase, s.Rollout.Reason)
	}
	// A margin, not an event: requests the load sent before the rollback are counted when
	// they finish, so the window below starts once they have.
	time.Sleep(300 * time.Millisecond)
	before, _ := l.counts()
	time.Sleep(time.Second) // a load window: a second after the rollback, which v2 must not answer
	after, _ := l.counts()
	total, failed, byVer := l.report(t, "canary aborted by analysis")
	t.Logf("canary aborted by analysis: %.0f requests/s over %s", float64(total)/time.Since(start).Seconds(), time.Since(start).Round(time.Millisecond))
	_, errByVer := l.counts()
	if failed != 0 {
		t.Errorf("%d of %d requests failed in the proxy or the network", failed, total)
	}
	if errByVer["v2"] == 0 || byVer["v2"] == 0 {
		t.Errorf("the bad canary served %d requests, %d of them 500s: it never took traffic", byVer["v2"], errByVer["v2"])
	}
	if errByVer["v1"] != 0 {
		t.Errorf("stable (v1) answered %d requests with 500", errByVer["v1"])
	}
	if after["v2"] != before["v2"] || after["v1"] <= before["v1"] {
		t.Errorf("in the second after the rollback: v2 answered %d requests, v1 %d; want v2 none", after["v2"]-before["v2"], after["v1"]-before["v1"])
	}
}
