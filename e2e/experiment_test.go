package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// compareTemplate judges the canary against the experiment's baseline by a sequential test
// of their error rates, on slipway's own proxy counts.
const compareTemplate = `apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: vs-baseline}
spec:
  metrics:
    - name: errors-vs-baseline
      count: 1
      interval: 200ms
      provider:
        builtin:
          metric: error_rate
          sequential: {tolerance: 0.01, scale: 0.1, minRequests: 20}
`

// An experiment step runs a fresh baseline of the stable revision beside the canary, each
// with 25% of the traffic, compares the two, and removes the baseline: a good canary goes
// on and is promoted, a bad one is rolled back, and no baseline instance outlives either.
func TestLocal_ExperimentComparesWithAFreshBaseline(t *testing.T) {
	strategy := `    canary:
      steps:
        - setWeight: 10
        - experiment:
            weight: 25
            analysis: {templates: [vs-baseline]}
        - setWeight: 50`
	c := newCluster(t)
	listen := freePort(t)
	tmpl := filepath.Join(c.dir, "vs-baseline.yaml")
	if err := os.WriteFile(tmpl, []byte(compareTemplate), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("apply", "-f", tmpl, "-f", c.appFile("web", listen, "v1", strategy, 4), "--wait", "--timeout", "60s")
	stableV1 := c.status("web").Stable.Revision
	baselinePrefix := stableV1 + "-baseline-" // and the rollout's number and attempt
	l := startLoad(t, "http://"+listen+"/", loadRate)

	// A good canary: the baseline appears, fresh, beside the long-running stable instances.
	c.must("apply", "-f", tmpl, "-f", c.appFile("web", listen, "v2", strategy, 4))
	oldIDs := map[string]bool{}
	for _, lv := range c.status("web").Live {
		if lv.Revision == stableV1 {
			for _, in := range lv.List {
				oldIDs[in.ID] = true
			}
		}
	}
	s := c.waitFor("web", "the experiment's baseline to be ready", func(s status) bool {
		for _, lv := range s.Live {
			if strings.HasPrefix(lv.Revision, baselinePrefix) && lv.Ready >= 1 {
				return true
			}
		}
		return false
	})
	for _, lv := range s.Live {
		if !strings.HasPrefix(lv.Revision, baselinePrefix) {
			continue
		}
		if lv.Version != "v1" {
			t.Errorf("the baseline runs version %q, want the stable v1", lv.Version)
		}
		for _, in := range lv.List {
			if oldIDs[in.ID] {
				t.Errorf("baseline instance %s is one of stable's long-running instances", in.ID)
			}
		}
	}
	if _, code := c.cli("status", "web", "--wait", "--timeout", "90s"); code != 0 {
		t.Fatalf("status --wait for the good canary: exit %d, want 0", code)
	}
	s = c.status("web")
	if s.Stable.Version != "v2" || s.Rollout.Phase != "Completed" {
		t.Fatalf("after the good canary: stable %+v, rollout %+v", s.Stable, s.Rollout)
	}
	out := c.must("analysis", "web")
	if !strings.Contains(out, "against baseline "+baselinePrefix) || !strings.Contains(out, "Successful") {
		t.Errorf("the experiment's analysis did not compare with a baseline %s...:\n%s", baselinePrefix, out)
	}
	for _, lv := range s.Live {
		if strings.Contains(lv.Revision, "-baseline-") {
			t.Errorf("baseline %s still runs after the rollout: %+v", lv.Revision, lv)
		}
	}

	// A bad canary (20% errors): the comparison with a baseline of v2 fails it.
	c.must("apply", "-f", tmpl, "-f", c.appFile("web", listen, "v3", strategy, 4, "--error-rate", "0.2"))
	if _, code := c.cli("status", "web", "--wait", "--timeout", "90s"); code != 3 {
		t.Fatalf("status --wait for the bad canary: exit %d, want 3 (aborted)", code)
	}
	s = c.status("web")
	if s.Stable.Version != "v2" || s.Rollout.Phase != "Aborted" || !strings.Contains(s.Rollout.Reason, "errors-vs-baseline") {
		t.Fatalf("after the bad canary: stable %+v, rollout %+v", s.Stable, s.Rollout)
	}
	c.waitFor("web", "the baseline to be gone", func(s status) bool {
		for _, lv := range s.Live {
			if strings.Contains(lv.Revision, "-baseline-") && len(lv.List) > 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond)
	total, failed, _ := l.report(t, "experiment")
	if failed != 0 {
		t.Errorf("%d of %d requests failed in the proxy or the network", failed, total)
	}
	_, errByVer := l.counts()
	if errByVer["v1"] != 0 || errByVer["v2"] != 0 {
		t.Errorf("stable or baseline answered 500s: %v", errByVer)
	}
}
