package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// examplesDir holds the commented example files README and docs point to.
const examplesDir = "../examples"

// exampleScenarios names, for every file of examples/, the scenario of TestExamples that
// applies it (or runs it) and checks that it does what its comments say. It is an
// allow-list: a file without an entry fails TestExamples.
var exampleScenarios = map[string]string{
	"quickstart.yaml": "quickstart",
	"canary.yaml":     "canary",
	"bluegreen.yaml":  "bluegreen",
	"rolling.yaml":    "rolling",
	"flags.yaml":      "flags",
	"ramp/ramp.yaml":  "ramp",
	// The app that reports outcomes: the ramp scenario builds and runs it beside the ramp;
	// its own test runs with the package.
	"ramp-hook/main.go":      "ramp",
	"ramp-hook/main_test.go": "ramp",
}

// TestExamples applies every file of examples/ to a server on the local platform, drives it
// the way its comments describe, and checks that it reaches the end they promise. The apps
// of the examples run `slipway demo-app` by name: the server finds the binary under test on
// its PATH, as a user's server finds an installed slipway.
func TestExamples(t *testing.T) {
	t.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	scenarios := map[string]func(*testing.T){
		"quickstart": exampleQuickstart,
		"canary":     exampleCanary,
		"bluegreen":  exampleBlueGreen,
		"rolling":    exampleRolling,
		"flags":      exampleFlags,
		"ramp":       exampleRamp,
	}
	var files []string
	err := filepath.WalkDir(examplesDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(examplesDir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := exampleScenarios[f]; !ok {
			t.Errorf("examples/%s has no scenario: add one to exampleScenarios that applies it and checks what its comments promise", f)
		}
	}
	for f, s := range exampleScenarios {
		if !slices.Contains(files, f) {
			t.Errorf("exampleScenarios lists examples/%s, which does not exist", f)
		}
		if scenarios[s] == nil {
			t.Errorf("examples/%s: no scenario %q", f, s)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(scenarios)) {
		t.Run(name, scenarios[name])
	}
}

// example writes examples/name with each old string of replace (old, new pairs) replaced,
// as out in the cluster's directory, and returns its path. Tests replace the examples'
// fixed listen addresses with free ports, and versions for the next revision.
func (c *cluster) example(name, out string, replace ...string) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		c.t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			c.t.Fatalf("examples/%s no longer holds %q", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	p := filepath.Join(c.dir, out)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// noFailures stops the load and checks that users saw no failed request and that version
// answered some.
func noFailures(t *testing.T, l *load, name, version string) map[string]int64 {
	t.Helper()
	total, failed, byVer := l.report(t, name)
	if failed != 0 {
		t.Errorf("%s: %d of %d requests failed", name, failed, total)
	}
	if byVer[version] == 0 {
		t.Errorf("%s: no request reached %s: %v", name, version, byVer)
	}
	return byVer
}

// versionAt GETs url with the headers (name, value pairs) and returns the version that
// answered (X-Demo-Version) and the status code.
func versionAt(t *testing.T, url string, headers ...string) (string, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0
	}
	resp.Body.Close()
	return resp.Header.Get("X-Demo-Version"), resp.StatusCode
}

// quickstart: v1 comes up; v2 walks its canary steps to the approval pause at 50%; promote
// completes it, with no failed request.
func exampleQuickstart(t *testing.T) {
	c := newCluster(t)
	listen, l := c.exampleUnderLoad(t, "quickstart.yaml", "hello-v1.yaml", "127.0.0.1:8088")
	c.must("apply", "-f", c.example("quickstart.yaml", "hello-v2.yaml", "127.0.0.1:8088", listen,
		"version: v1", "version: v2", `"--version", "v1"`, `"--version", "v2"`))
	c.waitFor("hello", "waiting for approval at 50%", func(s status) bool {
		return s.Rollout.ID == "hello-2" && s.Rollout.Phase == "Paused" && s.Rollout.Weight == 50
	})
	c.must("promote", "hello")
	if _, code := c.cli("status", "hello", "--wait", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait after promote: exit %d, want 0 (completed)", code)
	}
	c.waitFor("hello", "only v2 running", func(s status) bool {
		return s.Stable.Version == "v2" && len(s.Live) == 1 && s.Live[0].Version == "v2" && s.Live[0].Ready == 4
	})
	l.waitAnswers(t, 100)
	noFailures(t, l, "quickstart", "v2")
}

// canary: testers reach the canary by header; the error-rate analysis passes on the
// canary's real traffic, latency is watched in the background, the rollout waits for
// approval at 50% and completes once promoted, with no failed request.
func exampleCanary(t *testing.T) {
	c := newCluster(t)
	listen, l := c.exampleUnderLoad(t, "canary.yaml", "checkout-v1.yaml", "127.0.0.1:8080")
	c.must("apply", "-f", c.example("canary.yaml", "checkout-v2.yaml", "127.0.0.1:8080", listen,
		"version: v2.3.0", "version: v2.4.0", "DEMO_VERSION: v2.3.0", "DEMO_VERSION: v2.4.0"))
	c.waitFor("checkout", "waiting for approval at 50%", func(s status) bool {
		return s.Rollout.ID == "checkout-2" && (s.Rollout.Phase == "Paused" || s.Rollout.Phase == "Aborted") && s.Rollout.Weight == 50
	})
	var st struct {
		Rollout struct {
			Phase, Cause string
		} `json:"rollout"`
		Analysis []struct {
			ID, Kind, Phase string
		} `json:"analysis"`
	}
	if err := json.Unmarshal([]byte(c.must("status", "checkout", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, a := range st.Analysis {
		kinds[a.Kind] = a.Phase
	}
	if st.Rollout.Phase != "Paused" || st.Rollout.Cause != "step" || kinds["step"] != "Successful" || kinds["background"] != "Running" {
		t.Fatalf("at the approval step: rollout %+v, analysis %+v; want paused at a step, the error-rate run passed, latency running", st.Rollout, st.Analysis)
	}
	for range 10 {
		if v, code := versionAt(t, "http://"+listen+"/", "X-Canary", "always"); v != "v2.4.0" || code != http.StatusOK {
			t.Fatalf("a tester's request (X-Canary: always) reached %q (%d), want the canary v2.4.0", v, code)
		}
	}
	first, _ := versionAt(t, "http://"+listen+"/", "X-User-ID", "ann")
	for range 10 {
		if v, _ := versionAt(t, "http://"+listen+"/", "X-User-ID", "ann"); v != first {
			t.Fatalf("user ann saw %s, then %s: stickiness by X-User-ID broke", first, v)
		}
	}
	c.must("promote", "checkout")
	if _, code := c.cli("status", "checkout", "--wait", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait after promote: exit %d, want 0 (completed)", code)
	}
	c.waitFor("checkout", "only v2.4.0 running", func(s status) bool {
		return s.Stable.Version == "v2.4.0" && len(s.Live) == 1 && s.Live[0].Ready == 4
	})
	if v, _ := versionAt(t, "http://"+listen+"/", "X-Canary", "always"); v != "v2.4.0" {
		t.Errorf("after the rollout a tester's request reached %q", v)
	}
	l.waitAnswers(t, 100)
	byVer := noFailures(t, l, "canary", "v2.4.0")
	if byVer["v2.3.0"] == 0 {
		t.Errorf("stable v2.3.0 served nothing: %v", byVer)
	}
}

// bluegreen: the new revision answers on the preview address before the switch, the smoke
// test passes there and on the main address after the switch, the old revision keeps
// running, and a rollback within scaleDownDelay reuses its instances.
func exampleBlueGreen(t *testing.T) {
	c := newCluster(t)
	listen, preview := freePort(t), freePort(t)
	addrs := []string{"127.0.0.1:9000", listen, "127.0.0.1:9001", preview}
	c.must("apply", "-f", c.example("bluegreen.yaml", "billing-v1.yaml", addrs...), "--wait", "--timeout", "60s")
	before := c.status("billing-api")
	l := startLoad(t, "http://"+listen+"/", loadRate)
	l.waitAnswers(t, 100)
	c.must("apply", "-f", c.example("bluegreen.yaml", "billing-v2.yaml", append(addrs,
		`version: "2024.06.1"`, `version: "2024.07.1"`, `"--version", "2024.06.1"`, `"--version", "2024.07.1"`)...))
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, code := versionAt(t, "http://"+preview+"/")
		if code == http.StatusOK {
			if v != "2024.07.1" {
				t.Fatalf("the preview address answered as %q, want the new revision", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the preview address never answered: %+v", c.status("billing-api").Rollout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, code := c.cli("status", "billing-api", "--wait", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait: exit %d, want 0 (switched and completed)", code)
	}
	s := c.status("billing-api")
	if s.Stable.Version != "2024.07.1" || readyOf(s, "2024.06.1") != 3 {
		t.Fatalf("after the switch: stable %+v, old revision ready %d; want the old one still running (scaleDownDelay)",
			s.Stable, readyOf(s, "2024.06.1"))
	}
	l.waitAnswers(t, 100)
	c.must("rollback", "billing-api")
	if _, code := c.cli("status", "billing-api", "--wait", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait after rollback: exit %d, want 0", code)
	}
	after := c.status("billing-api")
	if after.Stable.Version != "2024.06.1" || !slices.Equal(addresses(before, "2024.06.1"), addresses(after, "2024.06.1")) {
		t.Fatalf("after the rollback: stable %+v, instances %v; want 2024.06.1 on the instances it had, %v",
			after.Stable, addresses(after, "2024.06.1"), addresses(before, "2024.06.1"))
	}
	l.waitAnswers(t, 100)
	byVer := noFailures(t, l, "blue-green", "2024.07.1")
	if byVer["2024.06.1"] == 0 {
		t.Errorf("2024.06.1 served nothing: %v", byVer)
	}
}

// addresses returns the sorted addresses of version's instances in s.
func addresses(s status, version string) []string {
	var out []string
	for _, l := range s.Live {
		if l.Version == version {
			for _, in := range l.List {
				out = append(out, in.Address)
			}
		}
	}
	slices.Sort(out)
	return out
}

// rolling: instances are replaced a few at a time, never more than 5 instances nor fewer
// than 3 ready ones, and no request fails.
func exampleRolling(t *testing.T) {
	c := newCluster(t)
	listen, l := c.exampleUnderLoad(t, "rolling.yaml", "catalog-v14.yaml", "127.0.0.1:8090")
	c.must("apply", "-f", c.example("rolling.yaml", "catalog-v15.yaml", "127.0.0.1:8090", listen,
		"version: v14", "version: v15", `"--version", "v14"`, `"--version", "v15"`))
	minReady, maxInstances := 4, 4
	deadline := time.Now().Add(60 * time.Second)
	for {
		var s struct {
			Stable  struct{ Version string }         `json:"stable"`
			Rollout struct{ ID, Phase string }       `json:"rollout"`
			Live    []struct{ Instances, Ready int } `json:"live"`
		}
		if err := json.Unmarshal([]byte(c.must("status", "catalog", "-o", "json")), &s); err != nil {
			t.Fatal(err)
		}
		ready, n := 0, 0
		for _, l := range s.Live {
			ready += l.Ready
			n += l.Instances
		}
		minReady, maxInstances = min(minReady, ready), max(maxInstances, n)
		if s.Rollout.ID == "catalog-2" && s.Rollout.Phase == "Completed" && ready == 4 && n == 4 {
			if s.Stable.Version != "v15" {
				t.Fatalf("stable after the rolling update: %+v", s.Stable)
			}
			break
		}
		if s.Rollout.Phase == "Aborted" || time.Now().After(deadline) {
			t.Fatalf("rolling update did not complete: %+v", s.Rollout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if minReady < 3 || maxInstances > 5 {
		t.Errorf("during the rolling update: %d ready at the fewest, %d instances at the most; want at least 3 and at most 5", minReady, maxInstances)
	}
	l.waitAnswers(t, 100)
	noFailures(t, l, "rolling", "v15")
}

// evalFlag evaluates flag key for the JSON evaluation context ctx and returns the variant
// (and the reason).
func (c *cluster) evalFlag(key, ctx string) (variant, reason string) {
	c.t.Helper()
	var e struct{ Variant, Reason string }
	if err := json.Unmarshal([]byte(c.must("flags", "eval", key, "--context", ctx, "-o", "json")), &e); err != nil {
		c.t.Fatal(err)
	}
	return e.Variant, e.Reason
}

// flags: staff get new-checkout, about 10% of other users too, always the same ones;
// banner-color is green; max-cart-items is disabled.
func exampleFlags(t *testing.T) {
	c := newCluster(t)
	c.must("apply", "-f", filepath.Join(examplesDir, "flags.yaml"))
	if v, _ := c.evalFlag("new-checkout", `{"targetingKey": "user-42", "email": "ann@example.com"}`); v != "on" {
		t.Errorf("new-checkout for staff: %q, want on", v)
	}
	on := 0
	const users = 100
	for i := range users {
		ctx := fmt.Sprintf(`{"targetingKey": "user-%d", "email": "someone@elsewhere.org"}`, i)
		v, _ := c.evalFlag("new-checkout", ctx)
		if v == "on" {
			on++
		}
		if again, _ := c.evalFlag("new-checkout", ctx); again != v {
			t.Fatalf("new-checkout for %s: %s, then %s", ctx, v, again)
		}
	}
	if on == 0 || on > 25 {
		t.Errorf("new-checkout on for %d of %d other users, want about 10%%", on, users)
	}
	if v, _ := c.evalFlag("banner-color", `{"targetingKey": "user-42"}`); v != "green" {
		t.Errorf("banner-color: %q, want green", v)
	}
	if v, reason := c.evalFlag("max-cart-items", `{"targetingKey": "user-42"}`); v != "" || reason != "DISABLED" {
		t.Errorf("max-cart-items: variant %q, reason %s; want no variant, DISABLED", v, reason)
	}
}

// exampleUnderLoad applies example file, written as name with its listen address addr
// swapped for a free port, waits for its rollout, and puts the load on it; it returns the
// address and the load.
func (c *cluster) exampleUnderLoad(t *testing.T, file, name, addr string) (string, *load) {
	t.Helper()
	listen := freePort(t)
	c.must("apply", "-f", c.example(file, name, addr, listen), "--wait", "--timeout", "60s")
	l := startLoad(t, "http://"+listen+"/", loadRate)
	l.waitAnswers(t, 100)
	return listen, l
}
