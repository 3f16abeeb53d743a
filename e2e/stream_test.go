package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi/apitest"
)

// The tests below run the CLI's streaming commands (events --follow, status --watch and
// --wait, logs -f, apply --wait) against a server that goes away and comes back.

// follower is a CLI command that holds a stream open, run in the background.
type follower struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	out    apitest.Buffer
	errOut apitest.Buffer
	done   chan struct{}
	code   int
}

// follow starts a CLI command in the background.
func (c *cluster) follow(args ...string) *follower {
	c.t.Helper()
	f := &follower{t: c.t, args: args, done: make(chan struct{})}
	f.cmd = exec.Command(bin, args...)
	f.cmd.Env = append(os.Environ(), "SLIPWAY_SERVER="+c.server)
	f.cmd.Stdout, f.cmd.Stderr = &f.out, &f.errOut
	if err := f.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		err := f.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			f.code = ee.ExitCode()
		} else if err != nil {
			f.code = -1
		}
		close(f.done)
	}()
	c.t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
		<-f.done
	})
	return f
}

// running fails the test when the command has ended.
func (f *follower) running() {
	f.t.Helper()
	select {
	case <-f.done:
		f.t.Fatalf("slipway %s ended with exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(f.args, " "), f.code, f.out.String(), f.errOut.String())
	default:
	}
}

// wait waits until the command ends by itself and returns its exit code.
func (f *follower) wait() int {
	f.t.Helper()
	select {
	case <-f.done:
	case <-time.After(90 * time.Second):
		f.t.Fatalf("slipway %s still runs after 90s\nstderr:\n%s", strings.Join(f.args, " "), f.errOut.String())
	}
	return f.code
}

// interrupt ends the command as Ctrl-C does and returns its exit code.
func (f *follower) interrupt() int {
	f.t.Helper()
	_ = f.cmd.Process.Signal(os.Interrupt)
	return f.wait()
}

// until polls the command's stdout until ok holds.
func (f *follower) until(what string, ok func(out string) bool) {
	f.t.Helper()
	f.waitOn(what, f.out.String, ok)
}

// untilErr waits until ok holds for what the command wrote to stderr.
func (f *follower) untilErr(what string, ok func(errOut string) bool) {
	f.t.Helper()
	f.waitOn(what, f.errOut.String, ok)
}

// waitOn waits until ok holds for what read returns, while the command runs.
func (f *follower) waitOn(what string, read func() string, ok func(string) bool) {
	f.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok(read()) {
		f.running()
		if time.Now().After(deadline) {
			f.t.Fatalf("slipway %s: timed out waiting for %s\nstdout (end):\n%s\nstderr:\n%s", strings.Join(f.args, " "), what,
				lastLines(f.out.String(), 20), f.errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamApp is an App whose instance prints a numbered tick every 50ms, so that a log
// follower can tell a repeated or skipped line.
const streamApp = `apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: web}
spec:
  replicas: 1
  version: VERSION
  run:
    command: sh
    args: ["-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done & exec \"$0\" demo-app --port \"$PORT\" --version VERSION", "BIN"]
  health:
    readiness: {http: {path: /healthz}, period: 200ms}
  traffic: {listen: "LISTEN"}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {}
`

// events parses JSON lines of events.
func parseEvents(t *testing.T, out string) []slipway.Event {
	t.Helper()
	var evs []slipway.Event
	for line := range strings.Lines(out) {
		var e slipway.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event line %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// completed reports whether a status --watch -o json output shows the rollout to version
// completed.
func completed(version string) func(string) bool {
	return func(out string) bool {
		for line := range strings.Lines(out) {
			var st slipway.AppStatus
			if json.Unmarshal([]byte(line), &st) == nil && st.Rollout != nil && st.Rollout.Version == version && st.Rollout.Phase == slipway.PhaseCompleted {
				return true
			}
		}
		return false
	}
}

var tickLine = regexp.MustCompile(`^(\S+) \| tick (\d+)$`)

// ticks returns the tick numbers each instance printed, in order.
func ticks(out string) map[string][]int {
	got := map[string][]int{}
	for line := range strings.Lines(out) {
		if m := tickLine.FindStringSubmatch(strings.TrimSuffix(line, "\n")); m != nil {
			n, _ := strconv.Atoi(m[2])
			got[m[1]] = append(got[m[1]], n)
		}
	}
	return got
}

// TestLocal_StreamsSurviveServerRestarts runs events --follow (of all apps and of one),
// status --watch, logs -f and status --wait against a local-platform server that is
// restarted in place, then killed and started again; each carries on, printing what
// happened after each restart exactly once.
func TestLocal_StreamsSurviveServerRestarts(t *testing.T) {
	c := &cluster{t: t, data: t.TempDir(), dir: t.TempDir(), listen: freePort(t), flags: []string{"--resync", "500ms"}}
	c.start()
	t.Cleanup(c.stop)
	listen := freePort(t)
	app := func(version string) string {
		p := filepath.Join(c.dir, "web-"+version+".yaml")
		doc := strings.NewReplacer("VERSION", version, "BIN", bin, "LISTEN", listen).Replace(streamApp)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cli := func(want int, args ...string) string {
		t.Helper()
		f := c.follow(args...)
		if code := f.wait(); code != want {
			t.Fatalf("slipway %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, f.out.String(), f.errOut.String())
		}
		return f.out.String()
	}
	paused := func() {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var st slipway.AppStatus
			if err := json.Unmarshal([]byte(cli(0, "status", "web", "-o", "json")), &st); err != nil {
				t.Fatal(err)
			}
			if st.Rollout != nil && st.Rollout.Phase == slipway.PhasePaused {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("rollout never paused: %+v", st.Rollout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	cli(0, "apply", "-f", app("v1"), "--wait", "--timeout", "60s")

	all := c.follow("events", "--follow", "--limit", "0", "-o", "json")
	web := c.follow("events", "web", "--follow", "--limit", "0", "-o", "json")
	watch := c.follow("status", "web", "--watch", "-o", "json")
	logs := c.follow("logs", "web", "-f", "--tail", "100000")
	all.until("the past events", func(out string) bool { return strings.Contains(out, `"rollout.completed"`) })
	web.until("the past events", func(out string) bool { return strings.Contains(out, `"rollout.completed"`) })
	watch.until("the first draw", completed("v1"))
	logs.until("ticks", func(out string) bool { return strings.Contains(out, "| tick 3\n") })

	// Restart in place, then roll out v2.
	c.restartInPlace()
	cli(0, "apply", "-f", app("v2"))
	paused()
	cli(0, "promote", "web")
	watch.until("v2 completed after the restart in place", completed("v2"))
	all.until("v2's events", func(out string) bool { return strings.Count(out, `"rollout.completed"`) == 2 })
	web.until("v2's events", func(out string) bool { return strings.Count(out, `"rollout.completed"`) == 2 })

	// Kill the server while v3 waits for approval, with apply --wait and status --wait
	// waiting for it; start it again and promote.
	applyWait := c.follow("apply", "-f", app("v3"), "--wait")
	paused()
	wait := c.follow("status", "web", "--wait")
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(wait.errOut.String(), "Paused"); time.Sleep(20 * time.Millisecond) {
		wait.running()
		if time.Now().After(deadline) {
			t.Fatalf("status --wait never began waiting\nstderr:\n%s", wait.errOut.String())
		}
	}
	c.killAndStart()
	for _, f := range []*follower{all, web, watch, logs, wait, applyWait} {
		f.running()
	}
	cli(0, "promote", "web")
	if code := wait.wait(); code != 0 {
		t.Fatalf("status --wait across the restart: exit %d\nstderr:\n%s", code, wait.errOut.String())
	}
	if code := applyWait.wait(); code != 0 {
		t.Fatalf("apply --wait across the restart: exit %d\nstderr:\n%s", code, applyWait.errOut.String())
	}
	if lost := strings.Count(applyWait.errOut.String(), " lost: "); lost != 1 {
		t.Errorf("apply --wait told of %d losses, want 1\nstderr:\n%s", lost, applyWait.errOut.String())
	}
	if !strings.Contains(wait.out.String(), "Phase:     Completed") {
		t.Errorf("status --wait printed:\n%s", wait.out.String())
	}
	watch.until("v3 completed after the kill", completed("v3"))
	all.until("v3's events", func(out string) bool { return strings.Count(out, `"rollout.completed"`) == 3 })
	web.until("v3's events", func(out string) bool { return strings.Count(out, `"rollout.completed"`) == 3 })
	// The v3 instance started after both restarts: the follower prints its ticks too.
	logs.until("ticks of three instances", func(out string) bool {
		n := 0
		for _, ts := range ticks(out) {
			if len(ts) > 5 {
				n++
			}
		}
		return n == 3
	})

	for _, f := range []*follower{all, web, watch, logs} {
		// A follower that has what it waited for may still be in its backoff after the second
		// restart: wait for it to say it is back before Ctrl-C.
		f.untilErr("the second reconnect", func(errOut string) bool {
			return strings.Count(errOut, "reconnected to the slipway server at "+c.server) >= 2
		})
		f.running()
		if code := f.interrupt(); code != 0 {
			t.Errorf("slipway %s: exit %d after Ctrl-C\nstderr:\n%s", strings.Join(f.args, " "), code, f.errOut.String())
		}
		// One line when the connection is lost and one when it is back, per restart.
		lost := strings.Count(f.errOut.String(), "connection to the slipway server at "+c.server+" lost")
		back := strings.Count(f.errOut.String(), "reconnected to the slipway server at "+c.server)
		if lost != 2 || back != 2 {
			t.Errorf("slipway %s: told of %d losses and %d reconnects, want 2 each\nstderr:\n%s", strings.Join(f.args, " "), lost, back, f.errOut.String())
		}
	}
	if lost := strings.Count(wait.errOut.String(), " lost: "); lost != 1 {
		t.Errorf("status --wait told of %d losses, want 1\nstderr:\n%s", lost, wait.errOut.String())
	}

	// Every event once, in order, none missing: what the followers printed is the log.
	var stored []slipway.Event
	if err := json.Unmarshal([]byte(cli(0, "events", "--limit", "0", "-o", "json")), &stored); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*follower{all, web} {
		got := parseEvents(t, f.out.String())
		var want []int64
		for _, e := range stored {
			if e.Seq <= got[len(got)-1].Seq && (f == all || e.App == "web") {
				want = append(want, e.Seq)
			}
		}
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Errorf("slipway %s printed events %v, want %v", strings.Join(f.args, " "), seqs, want)
		}
	}

	// Every tick of every instance once, in order, from its first.
	for inst, ts := range ticks(logs.out.String()) {
		for i, n := range ts {
			if n != i {
				t.Errorf("instance %s: ticks %v, want 0, 1, 2, ... each once", inst, ts)
				break
			}
		}
	}
}

// TestLocal_StreamsEndAtOnceOnARefusal checks that an error that is not a broken connection
// (an unknown app: 404) still ends a streaming command at once with exit 1.
func TestLocal_StreamsEndAtOnceOnARefusal(t *testing.T) {
	c := newCluster(t)
	for _, args := range [][]string{
		{"status", "nope", "--watch"},
		{"status", "nope", "--wait"},
		{"logs", "nope", "-f"},
	} {
		f := c.follow(args...)
		if code := f.wait(); code != 1 || !strings.Contains(f.errOut.String(), "error: ") || !strings.Contains(f.errOut.String(), "nope") {
			t.Errorf("slipway %s: exit %d, stderr %q; want exit 1 with the not-found error", strings.Join(args, " "), code, f.errOut.String())
		}
		if strings.Contains(f.errOut.String(), "reconnect") {
			t.Errorf("slipway %s tried to reconnect after a 404: %s", strings.Join(args, " "), f.errOut.String())
		}
	}
	f := c.follow("events", "--follow", "--reconnect-timeout", "-1s")
	if code := f.wait(); code != 1 || !strings.Contains(f.errOut.String(), "--reconnect-timeout -1s is negative") {
		t.Errorf("events --reconnect-timeout -1s: exit %d, stderr %q; want exit 1 naming the flag", code, f.errOut.String())
	}
}

// TestLocal_StreamsGiveUpAfterTheReconnectTimeout checks that a stream whose server does not
// come back ends after --reconnect-timeout with exit 1, saying so.
func TestLocal_StreamsGiveUpAfterTheReconnectTimeout(t *testing.T) {
	c := newCluster(t)
	c.must("apply", "-f", c.appFile("web", freePort(t), "v1", "    rolling: {}", 1))
	f := c.follow("events", "web", "--follow", "--reconnect-timeout", "300ms")
	f.until("the past events", func(out string) bool { return strings.Contains(out, "app.created") })
	c.stop()
	if code := f.wait(); code != 1 {
		t.Fatalf("events --follow: exit %d after its server stopped for good, want 1\nstderr:\n%s", code, f.errOut.String())
	}
	want := "error: event stream: no connection to the slipway server at " + c.server + " for 300ms"
	if errOut := f.errOut.String(); strings.Count(errOut, " lost: ") != 1 || !strings.Contains(errOut, want) {
		t.Errorf("stderr:\n%s\nwant one line saying the connection was lost, then %q", errOut, want)
	}
}
