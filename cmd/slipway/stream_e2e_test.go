package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/httpapi/apitest"
)

// unusedAddr returns an address on 127.0.0.1 that nothing listens on now. A server stopped
// and started again must come back on the same address for its clients to find it, so
// these tests cannot let each server pick its own port.
func unusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// restartable is a `slipway server` (platform local unless set) on a fixed address and data
// directory that a test restarts in place (SIGHUP), kills and starts again.
type restartable struct {
	t        *testing.T
	bin      string
	platform string
	data     string
	addr     string
	url      string
	// srv is the server when it is this test's child (not after a restart in place).
	srv  *exec.Cmd
	done chan error
}

func (s *restartable) start() {
	s.t.Helper()
	platform := s.platform
	if platform == "" {
		platform = "local"
	}
	cmd := exec.Command(s.bin, "server", "--platform", platform, "--data", s.data, "--listen", s.addr,
		"--poll", "50ms", "--resync", "500ms", "--sim-ready-delay", "50ms", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(s.data, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.srv, s.done = cmd, make(chan error, 1)
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil || !strings.Contains(line, "http://"+s.addr) {
		s.t.Fatalf("server banner %q, %v; want it listening on %s", line, err, s.addr)
	}
	s.url = "http://" + s.addr
	go func() { _, _ = io.Copy(io.Discard, r) }()
	go func() { s.done <- cmd.Wait(); _ = logf.Close() }()
}

// pid returns the pid of the server serving the data directory (0 when none).
func (s *restartable) pid() int {
	b, err := os.ReadFile(filepath.Join(s.data, pidFileName))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 || !processAlive(pid) {
		return 0
	}
	return pid
}

// restartInPlace sends SIGHUP and waits until another process serves the data directory.
func (s *restartable) restartInPlace() {
	s.t.Helper()
	old := s.pid()
	if old == 0 {
		s.t.Fatal("no server to restart")
	}
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		s.t.Fatal(err)
	}
	s.waitGone(old)
	if s.srv != nil {
		if err := <-s.done; err != nil {
			s.t.Fatalf("the old server did not exit 0 after handing over: %v", err)
		}
		s.srv = nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for p := s.pid(); p == 0 || p == old; p = s.pid() {
		if time.Now().After(deadline) {
			s.t.Fatalf("no server serves %s after the restart in place", s.data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killAndStart kills the server (SIGKILL: its instances keep running) and starts a new one
// on the same data directory and address, which adopts them.
func (s *restartable) killAndStart() {
	s.t.Helper()
	pid := s.pid()
	if pid == 0 {
		s.t.Fatal("no server to kill")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	if s.srv != nil {
		<-s.done
		s.srv = nil
	}
	s.waitGone(pid)
	time.Sleep(300 * time.Millisecond) // the clients meet a server that is gone, not one that restarts at once
	s.start()
}

// stop interrupts the server (it stops its instances) and waits until it is gone.
func (s *restartable) stop() {
	pid := s.pid()
	if pid == 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	s.waitGone(pid)
	if s.srv != nil {
		<-s.done
		s.srv = nil
	}
}

func (s *restartable) waitGone(pid int) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			s.t.Fatalf("server %d still runs after 60s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive reports whether pid runs (and is not a zombie nobody reaped yet).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st := string(b)
	i := strings.LastIndexByte(st, ')')
	return i < 0 || len(st) <= i+2 || (st[i+2] != 'Z' && st[i+2] != 'X')
}

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

func (s *restartable) follow(args ...string) *follower {
	s.t.Helper()
	f := &follower{t: s.t, args: args, done: make(chan struct{})}
	f.cmd = exec.Command(s.bin, args...)
	f.cmd.Env = append(os.Environ(), envServer+"="+s.url, envActor+"=e2e")
	f.cmd.Stdout, f.cmd.Stderr = &f.out, &f.errOut
	if err := f.cmd.Start(); err != nil {
		s.t.Fatal(err)
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
	s.t.Cleanup(func() {
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
	deadline := time.Now().Add(90 * time.Second)
	for !ok(f.out.String()) {
		f.running()
		if time.Now().After(deadline) {
			f.t.Fatalf("slipway %s: timed out waiting for %s\nstdout (end):\n%s\nstderr:\n%s", strings.Join(f.args, " "), what,
				tailOf(f.out.String(), 20), f.errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
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

// TestE2E_StreamsSurviveServerRestarts runs events --follow (of all apps and of one),
// status --watch, logs -f and status --wait against a local-platform server that is
// restarted in place, then killed and started again; each carries on, printing what
// happened after each restart exactly once.
func TestE2E_StreamsSurviveServerRestarts(t *testing.T) {
	s := &restartable{t: t, bin: slipwayBin(t), data: t.TempDir(), addr: unusedAddr(t)}
	s.start()
	t.Cleanup(func() {
		if s.pid() == 0 { // killed and not started again: a server adopts the instances to stop them
			s.start()
		}
		s.stop()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(s.data, "server.log")); err == nil {
				t.Logf("server log:\n%s", tailOf(string(b), 40))
			}
		}
	})
	dir := t.TempDir()
	listen := unusedAddr(t)
	app := func(version string) string {
		p := filepath.Join(dir, "web-"+version+".yaml")
		doc := strings.NewReplacer("VERSION", version, "BIN", s.bin, "LISTEN", listen).Replace(streamApp)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cli := func(want int, args ...string) string {
		t.Helper()
		f := s.follow(args...)
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

	all := s.follow("events", "--follow", "--limit", "0", "-o", "json")
	web := s.follow("events", "web", "--follow", "--limit", "0", "-o", "json")
	watch := s.follow("status", "web", "--watch", "-o", "json")
	logs := s.follow("logs", "web", "-f", "--tail", "100000")
	all.until("the past events", func(out string) bool { return strings.Contains(out, `"rollout.completed"`) })
	web.until("the past events", func(out string) bool { return strings.Contains(out, `"rollout.completed"`) })
	watch.until("the first draw", completed("v1"))
	logs.until("ticks", func(out string) bool { return strings.Contains(out, "| tick 3\n") })

	// Restart in place, then roll out v2.
	s.restartInPlace()
	cli(0, "apply", "-f", app("v2"))
	paused()
	cli(0, "promote", "web")
	watch.until("v2 completed after the restart in place", completed("v2"))
	all.until("v2's events", func(out string) bool { return strings.Count(out, `"rollout.completed"`) == 2 })
	web.until("v2's events", func(out string) bool { return strings.Count(out, `"rollout.completed"`) == 2 })

	// Kill the server while v3 waits for approval, with apply --wait and status --wait
	// waiting for it; start it again and promote.
	applyWait := s.follow("apply", "-f", app("v3"), "--wait")
	paused()
	wait := s.follow("status", "web", "--wait")
	waitFor(t, "status --wait to begin", func() bool { return strings.Contains(wait.errOut.String(), "Paused") })
	s.killAndStart()
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
		f.running()
		if code := f.interrupt(); code != 0 {
			t.Errorf("slipway %s: exit %d after Ctrl-C\nstderr:\n%s", strings.Join(f.args, " "), code, f.errOut.String())
		}
		// One line when the connection is lost and one when it is back, per restart.
		lost := strings.Count(f.errOut.String(), "connection to the slipway server at "+s.url+" lost")
		back := strings.Count(f.errOut.String(), "reconnected to the slipway server at "+s.url)
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

// TestE2E_StreamsEndAtOnceOnARefusal checks that an error that is not a broken connection
// (an unknown app: 404) still ends a streaming command at once with exit 1.
func TestE2E_StreamsEndAtOnceOnARefusal(t *testing.T) {
	s := &restartable{t: t, bin: slipwayBin(t), data: t.TempDir(), addr: unusedAddr(t)}
	s.start()
	t.Cleanup(s.stop)
	for _, args := range [][]string{
		{"status", "nope", "--watch"},
		{"status", "nope", "--wait"},
		{"logs", "nope", "-f"},
	} {
		f := s.follow(args...)
		if code := f.wait(); code != exitError || !strings.Contains(f.errOut.String(), "error: ") || !strings.Contains(f.errOut.String(), "nope") {
			t.Errorf("slipway %s: exit %d, stderr %q; want exit 1 with the not-found error", strings.Join(args, " "), code, f.errOut.String())
		}
		if strings.Contains(f.errOut.String(), "reconnect") {
			t.Errorf("slipway %s tried to reconnect after a 404: %s", strings.Join(args, " "), f.errOut.String())
		}
	}
	f := s.follow("events", "--follow", "--reconnect-timeout", "-1s")
	if code := f.wait(); code != exitError || !strings.Contains(f.errOut.String(), "--reconnect-timeout -1s is negative") {
		t.Errorf("events --reconnect-timeout -1s: exit %d, stderr %q; want exit 1 naming the flag", code, f.errOut.String())
	}
}

// TestE2E_StreamsGiveUpAfterTheReconnectTimeout checks that a stream whose server does not
// come back ends after --reconnect-timeout with exit 1, saying so.
func TestE2E_StreamsGiveUpAfterTheReconnectTimeout(t *testing.T) {
	e := &e2e{t: t, dir: t.TempDir()}
	s := &restartable{t: t, bin: slipwayBin(t), platform: "sim", data: t.TempDir(), addr: unusedAddr(t)}
	s.start()
	t.Cleanup(s.stop)
	apply := s.follow("apply", "-f", e.writeApp("v1"))
	if code := apply.wait(); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, apply.errOut.String())
	}
	f := s.follow("events", "web", "--follow", "--reconnect-timeout", "300ms")
	f.until("the past events", func(out string) bool { return strings.Contains(out, "app.created") })
	s.stop()
	if code := f.wait(); code != exitError {
		t.Fatalf("events --follow: exit %d after its server stopped for good, want 1\nstderr:\n%s", code, f.errOut.String())
	}
	want := "error: event stream: no connection to the slipway server at " + s.url + " for 300ms"
	if errOut := f.errOut.String(); strings.Count(errOut, " lost: ") != 1 || !strings.Contains(errOut, want) {
		t.Errorf("stderr:\n%s\nwant one line saying the connection was lost, then %q", errOut, want)
	}
}
