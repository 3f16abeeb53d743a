package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/dataplane"
)

var (
	crashSeed  = flag.Uint64("crash.seed", 0, "TestLocal_ServerKilledAtRandomInstants: the seed of the kill instants (0: from the clock)")
	crashKills = flag.Int("crash.kills", 18, "TestLocal_ServerKilledAtRandomInstants: how many times the server is killed (each kill is one instant per strategy)")
)

// crashApp is one app of the kill test: one per strategy, all three rolled out at once with
// the server killed at a different instant of each rollout.
type crashApp struct {
	name     string
	strategy string
	// span bounds the kill instants, measured from the apply: a little longer than the
	// rollout takes, so that some kills fall after it completed.
	span   time.Duration
	listen string
}

// crashReplicas is every app's instance count; with maxUnavailable 0 (rolling), and
// blue-green and canary keeping the stable revision whole until they switch, it is also the
// floor: the number of ready instances that must take the traffic at any time.
const crashReplicas = 3

// TestLocal_ServerKilledAtRandomInstants rolls three apps (rolling, blue-green, canary) to a
// new version over and over, SIGKILLs the server at a random instant of each rollout, and
// starts it again on the same data directory. After each restart:
//
//   - the traffic floor holds right away (floor_test.go): whenever the app's listener serves,
//     the revisions the proxy sends traffic to have at least crashReplicas ready instances
//     between them, so no revision with fewer ready instances than the strategy allows takes
//     all the traffic, and the proxy never answers that it has no ready instance;
//   - once the rollouts settled, the live instance processes are exactly the instances
//     slipway reports and records in DATA/instances.json: none it does not know.
//
// After a final clean stop no instance process is left at all.
//
// Instance processes are found by an environment variable the apps' specs set
// (E2E_CLUSTER=<the test's data directory>): slipway passes it to every instance process,
// every process an instance starts inherits it, /proc/<pid>/environ shows it whoever the
// parent is now (an instance outlives a killed server and is reparented), and it names this
// test's processes only. It does not rely on anything slipway itself marks, so it finds
// the processes of any version of slipway.
//
// -crash.seed replays a run; -crash.kills sets how many kills there are.
func TestLocal_ServerKilledAtRandomInstants(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -args -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	began := time.Now()

	c := &cluster{t: t, data: t.TempDir(), dir: t.TempDir()}
	c.listen = freePort(t)
	marker := c.data
	t.Cleanup(func() { killMarked(marker) }) // whatever happens, leave no process behind
	c.start()
	t.Cleanup(c.stop)

	apps := []*crashApp{
		{name: "roll", strategy: "    rolling: {maxSurge: 1, maxUnavailable: 0}", span: 2500 * time.Millisecond},
		{name: "bg", strategy: "    blueGreen: {autoPromote: true, scaleDownDelay: 300ms}", span: 2000 * time.Millisecond},
		{name: "can", strategy: `    canary:
      steps:
        - setWeight: 34
        - pause: {duration: 300ms}
        - setWeight: 67
        - pause: {duration: 300ms}`, span: 2500 * time.Millisecond},
	}
	for _, a := range apps {
		a.listen = freePort(t)
		c.must("apply", "-f", c.crashAppFile(a, "v1", marker))
	}
	for _, a := range apps {
		c.settle(a, "v1")
	}

	var (
		floorViolations []string
		orphans         []string
		reported        = map[int]bool{} // orphans already counted
		instants        = map[string][]time.Duration{}
	)
	for round := 1; round <= *crashKills; round++ {
		version := "v" + strconv.Itoa(round+1)
		// Each app's rollout starts at its own distance before the kill.
		delays := map[string]time.Duration{}
		order := slices.Clone(apps)
		for _, a := range apps {
			delays[a.name] = time.Duration(rng.Int64N(int64(a.span)))
		}
		slices.SortFunc(order, func(x, y *crashApp) int { return int(delays[y.name] - delays[x.name]) })
		killAt := time.Now().Add(delays[order[0].name] + 200*time.Millisecond)
		applied := map[string]time.Time{}
		// The sleeps are the schedule under test: each apply lands its chosen distance
		// before the kill.
		for _, a := range order {
			time.Sleep(time.Until(killAt.Add(-delays[a.name])))
			c.must("apply", "-f", c.crashAppFile(a, version, marker))
			applied[a.name] = time.Now()
		}
		time.Sleep(time.Until(killAt))

		pid := c.srv.Process.Pid
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		<-c.done
		c.srv = nil
		var line []string
		for _, a := range apps {
			d := killed.Sub(applied[a.name])
			instants[a.name] = append(instants[a.name], d)
			line = append(line, fmt.Sprintf("%s %v", a.name, d.Round(time.Millisecond)))
		}
		t.Logf("kill %d: server %d killed after the apply of %s by %s", round, pid, version, strings.Join(line, ", "))

		// Every app is watched from the moment the new server starts.
		watches := map[string]*floorWatch{}
		for _, a := range apps {
			watches[a.name] = watchFloor(c.data, a.name, "http://"+a.listen+"/")
		}
		c.start()
		for _, a := range apps {
			c.settle(a, version)
		}
		for _, a := range apps {
			for _, v := range watches[a.name].stop() {
				floorViolations = append(floorViolations, fmt.Sprintf("kill %d, %s (killed %v after its apply): %s",
					round, a.name, killed.Sub(applied[a.name]).Round(time.Millisecond), v))
			}
		}
		for _, o := range c.unknownProcesses(apps, marker, reported) {
			orphans = append(orphans, fmt.Sprintf("kill %d: %s", round, o))
		}
		if pids := dataPlanes(c.data); len(pids) != 1 {
			orphans = append(orphans, fmt.Sprintf("kill %d: %d data plane processes %v, want 1", round, len(pids), pids))
		}
	}

	// A clean stop leaves nothing running.
	c.stop()
	deadline := time.Now().Add(5 * time.Second)
	left := markedProcesses(marker)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = markedProcesses(marker)
	}
	var survivors []string
	for _, p := range left {
		survivors = append(survivors, p.String())
	}
	for _, pid := range dataPlanes(c.data) {
		survivors = append(survivors, fmt.Sprintf("data plane pid %d", pid))
	}

	n := 0
	for _, d := range instants {
		n += len(d)
	}
	t.Logf("%d kill instants (%d kills x %d strategies) in %v", n, *crashKills, len(apps), time.Since(began).Round(time.Second))
	for _, v := range floorViolations {
		t.Errorf("traffic floor: %s", v)
	}
	for _, o := range orphans {
		t.Errorf("process slipway does not know: %s", o)
	}
	for _, s := range survivors {
		t.Errorf("instance process left after a clean stop: %s", s)
	}
	if len(floorViolations)+len(orphans)+len(survivors) > 0 {
		t.Errorf("seed %d: %d floor violations, %d unknown processes, %d processes left after the clean stop",
			seed, len(floorViolations), len(orphans), len(survivors))
	}
}

// crashStartDelay is how long an instance of the kill test takes to start listening. It
// keeps an instance that is not ready from being ready a moment later, so that a revision
// taking the traffic with too few instances does so for a while, as with a real app.
const crashStartDelay = 250 * time.Millisecond

// crashAppFile writes app a at version and returns its path. Its instances carry the
// marker in E2E_CLUSTER, start after crashStartDelay (the shell execs the demo app, so the
// process stays the same), and are probed often so that rollouts are short.
func (c *cluster) crashAppFile(a *crashApp, version, marker string) string {
	c.t.Helper()
	script := fmt.Sprintf("sleep %.3f; exec %s demo-app --port ${PORT} --version %s", crashStartDelay.Seconds(), bin, version)
	doc := fmt.Sprintf(`apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: %s}
spec:
  replicas: %d
  version: %s
  run:
    command: /bin/sh
    args: ["-c", %q]
    env: {E2E_CLUSTER: %q, E2E_APP: %q}
  health:
    readiness: {http: {path: /healthz}, period: 100ms}
  traffic: {listen: %q}
  strategy:
%s
`, a.name, crashReplicas, version, script, marker, a.name, a.listen, a.strategy)
	p := filepath.Join(c.dir, a.name+"-"+version+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// settle waits until app a's rollout to version completed and only its crashReplicas ready
// instances run.
func (c *cluster) settle(a *crashApp, version string) {
	c.t.Helper()
	c.waitFor(a.name, version+" settled", func(s status) bool {
		if s.Stable == nil || s.Stable.Version != version || (s.Rollout != nil && s.Rollout.Phase != "Completed") {
			return false
		}
		return len(s.Live) == 1 && s.Live[0].Version == version && s.Live[0].Ready == crashReplicas && len(s.Live[0].List) == crashReplicas
	})
}

// unknownProcesses returns the live instance processes that are neither an instance the
// server reports nor one DATA/instances.json records, once those that are on their way out
// had a moment to end. Each is reported once (skip holds those reported before).
func (c *cluster) unknownProcesses(apps []*crashApp, marker string, skip map[int]bool) []string {
	c.t.Helper()
	unknown := func() []markedProcess {
		ports := map[string]bool{}
		for _, a := range apps {
			for _, l := range c.status(a.name).Live {
				for _, in := range l.List {
					if i := strings.LastIndexByte(in.Address, ':'); i >= 0 {
						ports[in.Address[i+1:]] = true
					}
				}
			}
		}
		recorded := statePIDs(c.t, c.data)
		var out []markedProcess
		for _, p := range markedProcesses(marker) {
			if !skip[p.pid] && (!ports[p.port] || !recorded[p.pid]) {
				out = append(out, p)
			}
		}
		return out
	}
	deadline := time.Now().Add(3 * time.Second)
	got := unknown()
	for len(got) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got = unknown()
	}
	var out []string
	for _, p := range got {
		skip[p.pid] = true
		out = append(out, p.String())
	}
	return out
}

// statePIDs returns the pids DATA/instances.json records.
func statePIDs(t *testing.T, data string) map[int]bool {
	t.Helper()
	var st struct {
		Instances []struct {
			PID int `json:"pid"`
		} `json:"instances"`
	}
	b, err := os.ReadFile(filepath.Join(data, "instances.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("instances.json: %v", err)
	}
	out := map[int]bool{}
	for _, in := range st.Instances {
		out[in.PID] = true
	}
	return out
}

// markedProcess is a live process whose environment holds the test's marker.
type markedProcess struct {
	pid, pgid int
	app       string // E2E_APP in its environment
	port      string // the value after --port on its command line
	version   string // the value after --version
}

func (p markedProcess) String() string {
	return fmt.Sprintf("pid %d (group %d): %s %s on port %s", p.pid, p.pgid, p.app, p.version, p.port)
}

// markedProcesses scans /proc for live (not zombie) processes with E2E_CLUSTER=marker in
// their environment.
func markedProcesses(marker string) []markedProcess {
	want := []byte("E2E_CLUSTER=" + marker)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []markedProcess
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		env, err := os.ReadFile(dir + "/environ")
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			continue
		}
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		p := markedProcess{pid: pid}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("E2E_APP=")); ok {
				p.app = string(v)
			}
		}
		p.pgid, _ = strconv.Atoi(f[2])
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		for j := 0; j+1 < len(args); j++ {
			switch args[j] {
			case "--port":
				p.port = args[j+1]
			case "--version":
				p.version = args[j+1]
			}
		}
		out = append(out, p)
	}
	return out
}

// dataPlanes returns the pids of the live processes marked as the data plane of data.
func dataPlanes(data string) []int {
	abs, _ := filepath.Abs(data)
	want := []byte(dataplane.EnvMark + "=" + abs)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil || !alive(pid) {
			continue
		}
		env, err := os.ReadFile(dir + "/environ")
		if err == nil && slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			out = append(out, pid)
		}
	}
	return out
}

// killMarked kills every process markedProcesses finds, with the process group it leads.
func killMarked(marker string) {
	for _, p := range markedProcesses(marker) {
		if p.pgid == p.pid {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}
