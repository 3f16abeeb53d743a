package e2e

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/dataplane"
	"slipway.dev/slipway/slipwaytest"
)

const localEnvironments = `apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata: {name: staging, labels: {tier: staging}}
spec:
  target: {kind: local}
---
apiVersion: slipway.dev/v1alpha1
kind: Environment
metadata: {name: production, labels: {tier: production}}
spec:
  target: {kind: local}
`

// inEnvironment writes a copy of the app file at path with the app in environment env.
func (c *cluster) inEnvironment(path, name, env string) string {
	c.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	doc := strings.Replace(string(b), "metadata: {name: "+name+"}", fmt.Sprintf("metadata: {name: %s, environment: %s}", name, env), 1)
	if doc == string(b) {
		c.t.Fatalf("no metadata to edit in %s", path)
	}
	out := filepath.Join(c.dir, env+"-"+filepath.Base(path))
	if err := os.WriteFile(out, []byte(doc), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// TestLocal_TwoEnvironmentsSideBySide: one server, two environments on the local target,
// the same app in each on its own address, each behind a data plane of its own. A rolling
// update in staging under load leaves production's version and requests untouched; a
// restart in place carries both environments over, and both roll out after it; a clean stop
// stops every environment's data plane.
func TestLocal_TwoEnvironmentsSideBySide(t *testing.T) {
	c := newCluster(t)
	envs := filepath.Join(c.dir, "environments.yaml")
	if err := os.WriteFile(envs, []byte(localEnvironments), 0o600); err != nil {
		t.Fatal(err)
	}
	stagingAddr, prodAddr := freePort(t), freePort(t)
	rolling := "    rolling: {maxSurge: 1, maxUnavailable: 0}"
	staging := func(v string) string {
		return c.inEnvironment(c.appFile("web", stagingAddr, v, rolling, 2), "web", "staging")
	}
	production := func(v string) string {
		return c.inEnvironment(c.appFile("web", prodAddr, v, rolling, 2), "web", "production")
	}
	// One apply: the environments and the app in each.
	out := c.must("apply", "-f", envs, "-f", staging("v1"), "-f", production("v1"))
	for _, want := range []string{"Environment staging (create)", "App web in staging (create)", "App web in production (create)"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	c.must("-e", "staging", "status", "web", "--wait", "--timeout", "60s")
	c.must("-e", "production", "status", "web", "--wait", "--timeout", "60s")
	for addr, want := range map[string]string{stagingAddr: "v1", prodAddr: "v1"} {
		if v, code := versionAt(t, "http://"+addr+"/"); v != want || code != 200 {
			t.Fatalf("%s answered %q (%d), want %s", addr, v, code, want)
		}
	}
	if _, code := c.cli("status", "web"); code == 0 {
		t.Error("web exists in the default environment")
	}
	planes := map[string]int{}
	for _, env := range []string{"staging", "production"} {
		pid := readPIDFile(filepath.Join(c.data, "env", env, dataplane.PIDName))
		if !alive(pid) {
			t.Fatalf("environment %s has no data plane running (pid %d)", env, pid)
		}
		planes[env] = pid
		t.Cleanup(func() {
			if alive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
	if planes["staging"] == planes["production"] {
		t.Fatal("both environments share one data plane")
	}

	// staging rolls to v2 under load; production, under load too, sees v1 alone.
	stagingLoad, prodLoad := startLoad(t, "http://"+stagingAddr+"/", 50), startLoad(t, "http://"+prodAddr+"/", 50)
	c.must("-e", "staging", "apply", "-f", staging("v2"))
	c.must("-e", "staging", "status", "web", "--wait", "--timeout", "60s")
	noFailures(t, stagingLoad, "staging", "v2")
	if byVer := noFailures(t, prodLoad, "production", "v1"); len(byVer) != 1 {
		t.Errorf("production answered with versions %v during staging's rollout, want v1 alone", byVer)
	}

	// A restart in place carries both environments over; both still roll out after it.
	prodLoad = startLoad(t, "http://"+prodAddr+"/", 50)
	c.restartInPlace()
	c.must("-e", "production", "apply", "-f", production("v2"))
	c.must("-e", "production", "status", "web", "--wait", "--timeout", "60s")
	noFailures(t, prodLoad, "production across the restart", "v2")
	c.must("-e", "staging", "apply", "-f", staging("v3"))
	c.must("-e", "staging", "status", "web", "--wait", "--timeout", "60s")
	if v, _ := versionAt(t, "http://"+stagingAddr+"/"); v != "v3" {
		t.Errorf("staging answers %q after its rollout, want v3", v)
	}
	for env, pid := range planes {
		if got := readPIDFile(filepath.Join(c.data, "env", env, dataplane.PIDName)); got != pid {
			t.Errorf("environment %s's data plane changed from %d to %d across the restart", env, pid, got)
		}
	}

	// A clean stop stops each environment's data plane.
	c.stopPID(c.serverPID())
	deadline := time.Now().Add(20 * time.Second)
	for env, pid := range planes {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("environment %s's data plane (pid %d) outlived a clean stop", env, pid)
		}
	}
}

// TestLocal_EnvironmentsSurviveAServerKill: with two environments on the local target under
// load, the server is killed (SIGKILL); the next server adopts every environment's
// instances and data plane (none started anew, none duplicated) without a failed request,
// and rolls out in both; a clean stop then leaves no instance and no data plane of any
// environment running.
func TestLocal_EnvironmentsSurviveAServerKill(t *testing.T) {
	c := newCluster(t)
	envs := filepath.Join(c.dir, "environments.yaml")
	if err := os.WriteFile(envs, []byte(localEnvironments), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{"staging": freePort(t), "production": freePort(t)}
	rolling := "    rolling: {maxSurge: 1, maxUnavailable: 0}"
	file := func(env, v string) string {
		return c.inEnvironment(c.appFile("web", addrs[env], v, rolling, 2), "web", env)
	}
	c.must("apply", "-f", envs, "-f", file("staging", "v1"), "-f", file("production", "v1"))
	planes, instances := map[string]int{}, map[string]map[int]bool{}
	for env := range addrs {
		c.must("-e", env, "status", "web", "--wait", "--timeout", "60s")
		dir := filepath.Join(c.data, "env", env)
		pids := dataPlanes(dir)
		if len(pids) != 1 {
			t.Fatalf("environment %s: data planes %v, want one", env, pids)
		}
		planes[env], instances[env] = pids[0], statePIDs(t, dir)
		for pid := range instances[env] {
			t.Cleanup(func() {
				if alive(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
		}
		t.Cleanup(func() {
			if alive(pids[0]) {
				_ = syscall.Kill(pids[0], syscall.SIGKILL)
			}
		})
	}
	loads := map[string]*load{}
	for env, addr := range addrs {
		loads[env] = startLoad(t, "http://"+addr+"/", 50)
	}
	if err := c.srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
	c.srv = nil
	c.start()
	for env := range addrs {
		c.must("-e", env, "status", "web", "--wait", "--timeout", "60s")
		dir := filepath.Join(c.data, "env", env)
		if pids := dataPlanes(dir); len(pids) != 1 || pids[0] != planes[env] {
			t.Errorf("environment %s after the kill: data planes %v, want %d alone", env, pids, planes[env])
		}
		if got := statePIDs(t, dir); !maps.Equal(got, instances[env]) {
			t.Errorf("environment %s after the kill: instances %v, want %v adopted", env, got, instances[env])
		}
	}
	for env, l := range loads {
		noFailures(t, l, env+" across the kill", "v1")
	}
	for env := range addrs {
		c.must("-e", env, "apply", "-f", file(env, "v2"))
		c.must("-e", env, "status", "web", "--wait", "--timeout", "60s")
		if v, _ := versionAt(t, "http://"+addrs[env]+"/"); v != "v2" {
			t.Errorf("%s answers %q after its rollout, want v2", env, v)
		}
	}
	running := map[int]bool{}
	for env := range addrs {
		maps.Copy(running, statePIDs(t, filepath.Join(c.data, "env", env)))
	}
	left := func() []int {
		var out []int
		for env := range addrs {
			out = append(out, dataPlanes(filepath.Join(c.data, "env", env))...)
		}
		for pid := range running {
			if alive(pid) {
				out = append(out, pid)
			}
		}
		return out
	}
	c.stop()
	slipwaytest.Eventually(t, 20*time.Second, "every environment's processes to stop after a clean stop", func() bool { return len(left()) == 0 })
}

// TestLocal_OneAddressInTwoEnvironments: the same app file applied to two environments on
// the local target (its traffic.listen the same) is refused for the second, by its own API
// (-e) and by a file that names the environment, instead of leaving the second app looking
// healthy while the first one's data plane answers its address.
func TestLocal_OneAddressInTwoEnvironments(t *testing.T) {
	c := newCluster(t)
	envs := filepath.Join(c.dir, "environments.yaml")
	if err := os.WriteFile(envs, []byte(localEnvironments), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	web := c.appFile("web", addr, "v1", "    rolling: {maxSurge: 1, maxUnavailable: 0}", 1)
	c.must("apply", "-f", envs)
	c.must("-e", "staging", "apply", "-f", web)
	c.must("-e", "staging", "status", "web", "--wait", "--timeout", "60s")
	for _, args := range [][]string{
		{"-e", "production", "apply", "-f", web},
		{"-e", "production", "plan", "-f", web},
		{"apply", "-f", c.inEnvironment(web, "web", "production")},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SLIPWAY_SERVER="+c.server)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), addr+" is also the listen address of App web in environment staging") {
			t.Errorf("slipway %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out := c.must("-e", "production", "get", "apps"); strings.Contains(out, "web") {
		t.Errorf("web was applied to production:\n%s", out)
	}
	if v, code := versionAt(t, "http://"+addr+"/"); v != "v1" || code != 200 {
		t.Errorf("%s answered %q (%d), want staging's v1", addr, v, code)
	}
}
