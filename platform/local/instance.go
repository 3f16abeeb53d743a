package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"slipway.dev/slipway"
)

// instance is one copy of a revision: a process (restarted when it ends) and its probes.
// Its goroutine (run) owns the process; the supervisor only marks it draining and tells it
// to stop.
type instance struct {
	a       *app
	id      string
	rev     string
	ordinal int
	version string
	spec    slipway.RevisionSpec
	log     *slog.Logger

	// life ends when the instance is told to stop; keep says to leave the process running.
	life   context.Context
	cancel context.CancelFunc
	keep   atomic.Bool

	// Guarded by a.mu.
	launched   bool // its goroutine was started
	leaving    bool // to be stopped, once the state file says so (then draining)
	draining   bool // out of the proxy table, to be stopped
	stopping   bool // told to stop
	adopted    bool // its current process was started by an earlier server
	awaited    bool // adopted while it took traffic at a handover: its table waits for it
	unknown    bool // adopted, and its readiness not known yet (see app.warm)
	starting   bool // its process is being started: on record with no pid yet
	pid        int  // its process, 0 when it has none
	startTime  uint64
	port       int
	state      slipway.InstanceState
	ready      bool
	readySince time.Time
	restarts   int
	message    string
}

// instance returns a new instance record of app a; its goroutine starts on the next
// convergence.
func (a *app) instance(rev string, ordinal int, version string, spec slipway.RevisionSpec) *instance {
	id := rev + "-" + strconv.Itoa(ordinal)
	life, cancel := context.WithCancel(context.Background())
	return &instance{
		a: a, id: id, rev: rev, ordinal: ordinal, version: version, spec: spec,
		log:  a.log.With("instance", id),
		life: life, cancel: cancel, state: slipway.InstanceStarting,
	}
}

// stop tells the instance's goroutine to stop its process (drain, SIGTERM, SIGKILL), or,
// with keep, to leave it running and return. The caller holds a.mu.
func (in *instance) stop(keep bool) {
	in.keep.Store(keep)
	in.cancel()
}

// status reports the instance as Observe shows it. The caller holds a.mu.
func (in *instance) status() slipway.Instance {
	s := slipway.Instance{ID: in.id, State: in.state, Ready: in.ready && !in.draining, Restarts: in.restarts, Message: in.message}
	if in.draining {
		s.State = slipway.InstanceDraining
	}
	if s.Ready {
		t := in.readySince
		s.ReadySince = &t
	}
	if in.port > 0 {
		s.Address = "127.0.0.1:" + strconv.Itoa(in.port)
	}
	return s
}

// update changes the instance under the app's lock and nudges the supervisor.
func (in *instance) update(f func()) {
	in.a.mu.Lock()
	f()
	in.a.mu.Unlock()
	in.a.poke()
}

// outcome is why an incarnation of the process ended.
type outcome uint8

const (
	outStop   outcome = iota // told to stop
	outExited                // the process ended by itself
	outUnlive                // the liveness probe failed
)

// run is the instance's goroutine: start the process, watch it, restart it when it ends or
// fails liveness (after a backoff), and stop it when told to. However early it is told to
// stop (even before its first turn of the loop, as an adopted instance the state no longer
// places is), the process it has is stopped before the instance leaves the record.
func (in *instance) run() {
	p := in.a.p
	backoff := backoffMin
	in.a.mu.Lock()
	haveProcess := in.adopted
	in.a.mu.Unlock()
	for in.life.Err() == nil {
		if !haveProcess {
			// While the platform is held, the server taking over starts the process.
			if !p.awaitThaw(in.life) {
				break
			}
			if err := in.start(); errors.Is(err, errHeld) {
				continue
			} else if err != nil {
				in.log.Error("instance not started", "err", err)
				in.update(func() {
					in.state, in.message = slipway.InstanceFailed, err.Error()
					in.restarts++
				})
				if !sleepCtx(in.life, backoff) {
					break
				}
				backoff = min(2*backoff, backoffMax)
				continue
			}
		}
		haveProcess = false
		out, why := in.watch()
		if out == outStop {
			break
		}
		if out == outUnlive {
			in.leaveTable()
			// While held, the process is left to the server taking over.
			if !p.awaitThaw(in.life) {
				break
			}
			in.terminate()
		} else {
			// The process ended by itself; helpers it left in its group (holding its port,
			// say) must not outlive it.
			in.a.mu.Lock()
			signalGroup(in.pid, syscall.SIGKILL)
			in.a.mu.Unlock()
		}
		in.a.mu.Lock()
		if !in.readySince.IsZero() && time.Since(in.readySince) >= backoffReset {
			backoff = backoffMin
		}
		in.state, in.ready, in.readySince = slipway.InstanceFailed, false, time.Time{}
		in.pid, in.startTime = 0, 0
		in.restarts++
		in.message = fmt.Sprintf("%s; restart %d in %v", why, in.restarts, backoff)
		in.adopted, in.unknown = false, false
		in.a.mu.Unlock()
		in.a.poke()
		p.persist()
		in.log.Warn("instance ended", "reason", why, "restarts", in.restarts, "backoff", backoff)
		in.appendLog("slipway: " + why)
		if !sleepCtx(in.life, backoff) {
			break
		}
		backoff = min(2*backoff, backoffMax)
	}
	if in.keep.Load() {
		return
	}
	in.terminate()
	in.update(func() { in.pid, in.ready, in.unknown = 0, false, false })
	in.a.remove(in)
	p.persist()
}

// start starts a new process for the instance on a free port. The instance is on record
// (as starting) before the process starts, and with its pid right after, so that a server
// killed at any instant leaves every process it started on record. It returns errHeld,
// starting nothing, while the platform is held, and an error, starting nothing, when the
// record cannot be written.
func (in *instance) start() error {
	p := in.a.p
	p.starting.RLock()
	defer p.starting.RUnlock()
	if p.isHeld() {
		return errHeld
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	ps := strconv.Itoa(port)
	// ${PORT} is the instance's port and ${VERSION} its revision's version (a release picks
	// its build: command: ./bin/web-${VERSION}).
	expand := func(s string) string {
		return strings.NewReplacer("${PORT}", ps, "${VERSION}", in.spec.Version).Replace(s)
	}
	run := in.spec.Run
	args := make([]string, len(run.Args))
	for i, a := range run.Args {
		args[i] = expand(a)
	}
	f, err := openLog(p.logPath(in.a.name, in.id))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(expand(run.Command), args...) //nolint:noctx // an instance outlives requests; it is stopped by signal (stop)
	cmd.Dir = run.Dir
	cmd.Env = in.env(port)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	in.update(func() {
		in.starting, in.port = true, port
		in.state, in.ready, in.readySince = slipway.InstanceStarting, false, time.Time{}
	})
	if err := p.record(); err != nil {
		in.update(func() { in.starting = false })
		return fmt.Errorf("start %s: not on record: %w", in.id, err)
	}
	fmt.Fprintf(f, "slipway: %s starting %s on port %d\n", time.Now().Format(time.RFC3339), in.id, port)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(f, "slipway: start failed: %v\n", err)
		in.update(func() { in.starting = false })
		p.persist()
		return fmt.Errorf("start %s: %w", in.id, err)
	}
	pid := cmd.Process.Pid
	_, started, err := procStat(pid)
	if err != nil {
		// Not expected: the child exists until it is reaped, and nothing reaps it yet.
		// Kill it rather than run it unwatched.
		signalGroup(pid, syscall.SIGKILL)
		_, _ = cmd.Process.Wait()
		in.update(func() { in.starting = false })
		p.persist()
		return fmt.Errorf("start %s: %w", in.id, err)
	}
	// The process is reaped with wait4 by pid (proc.go), so os/exec keeps no handle.
	_ = cmd.Process.Release()
	in.update(func() { in.pid, in.startTime, in.starting = pid, started, false })
	p.persist()
	in.log.Info("instance started", "pid", pid, "port", port)
	return nil
}

// env returns the process environment: the server's, then the revision's, then PORT.
func (in *instance) env(port int) []string {
	env := os.Environ()
	keys := make([]string, 0, len(in.spec.Run.Env))
	for k := range in.spec.Run.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+in.spec.Run.Env[k])
	}
	env = append(env, "PORT="+strconv.Itoa(port))
	if m := in.a.p.mark; m != "" {
		// The marks come last: they win over any the server or the revision has (strays.go).
		env = append(env, envInstanceData+"="+m, envInstance+"="+in.a.name+"/"+in.id)
	}
	return env
}

// watch probes the current process and waits until it ends, fails liveness or the instance
// is told to stop. It returns why, with a message.
func (in *instance) watch() (outcome, string) {
	a := in.a
	a.mu.Lock()
	pid, start, port := in.pid, in.startTime, in.port
	a.mu.Unlock()

	ctx, cancel := context.WithCancel(in.life)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make(chan probeResult)
	tg := target{port: port, dir: in.spec.Run.Dir, env: in.env(port), client: a.p.probeClient}
	ready := newProbe(readiness, in.spec.Health.Readiness)
	live := newProbe(liveness, in.spec.Health.Liveness)
	for _, pr := range []*probe{ready, live} {
		if pr != nil {
			wg.Go(func() { pr.loop(ctx, tg, results) })
		}
	}

	poll := time.NewTicker(exitPoll)
	defer poll.Stop()
	rotate := time.NewTicker(rotateEvery)
	defer rotate.Stop()
	var okRun, failRun, liveFails int
	for {
		select {
		case <-in.life.Done():
			return outStop, "stopped"
		case <-poll.C:
			if ended, how := reap(pid, start); ended {
				return outExited, "process ended: " + how
			}
		case <-rotate.C:
			if _, err := rotateLog(a.p.logPath(a.name, in.id), a.p.cfg.LogMaxBytes); err != nil {
				in.log.Warn("log not rotated", "err", err)
			}
		case r := <-results:
			if r.kind == liveness {
				if r.err == nil {
					liveFails = 0
					continue
				}
				if liveFails++; liveFails >= live.failure {
					return outUnlive, "liveness probe failed: " + r.err.Error()
				}
				continue
			}
			if r.err == nil {
				okRun, failRun = okRun+1, 0
			} else {
				okRun, failRun = 0, failRun+1
			}
			in.readiness(r.err, okRun, failRun, ready)
		}
	}
}

// readiness applies a readiness result: ready after success consecutive passes, unready
// (and out of the proxy table) after failure consecutive failures.
func (in *instance) readiness(err error, okRun, failRun int, pr *probe) {
	a := in.a
	a.mu.Lock()
	changed := false
	switch {
	case err == nil && !in.ready && okRun >= pr.success:
		in.ready, in.readySince, in.state, in.message = true, time.Now(), slipway.InstanceRunning, ""
		changed = true
	case err == nil && in.ready:
		// Still ready.
	case err != nil && failRun >= pr.failure:
		msg := "readiness probe failed: " + err.Error()
		if in.ready || in.message != msg || in.unknown {
			in.ready, in.readySince, in.message = false, time.Time{}, msg
			changed = true
		}
	}
	if in.ready || (err != nil && failRun >= pr.failure) {
		in.unknown = false // an adopted instance's readiness is known now
	}
	ready := in.ready
	a.mu.Unlock()
	if changed {
		in.log.Info("readiness changed", "ready", ready)
		a.poke()
	}
}

// leaveTable takes the instance out of the proxy table (as unready) and waits, briefly, until
// the table in effect no longer has it.
func (in *instance) leaveTable() {
	in.update(func() { in.ready, in.readySince = false, time.Time{} })
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		in.a.mu.Lock()
		gone := !inTable(in.a.status.Table, in.id)
		in.a.mu.Unlock()
		if gone {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// terminate drains the instance's requests, then sends SIGTERM to its process group, and
// SIGKILL after StopGrace. It runs to the end even when the server is shutting down: a
// process must not outlive it. An instance with no process has nothing to stop.
func (in *instance) terminate() {
	a := in.a
	a.mu.Lock()
	pid, start := in.pid, in.startTime
	a.mu.Unlock()
	if pid <= 0 {
		return
	}
	a.drain(in.id)
	signalGroup(pid, syscall.SIGTERM)
	ended, how := waitEnded(pid, start, a.p.cfg.StopGrace)
	if !ended {
		in.log.Warn("instance killed", "pid", pid, "grace", a.p.cfg.StopGrace)
		signalGroup(pid, syscall.SIGKILL)
		ended, how = waitEnded(pid, start, killWait)
	}
	// Helpers the process left in its group go with it.
	signalGroup(pid, syscall.SIGKILL)
	if !ended {
		in.log.Error("instance did not end", "pid", pid)
		return
	}
	in.log.Info("instance stopped", "pid", pid, "how", how)
	in.appendLog("slipway: stopped: " + how)
}

// appendLog writes a line of the platform's own to the instance's log.
func (in *instance) appendLog(line string) {
	f, err := openLog(in.a.p.logPath(in.a.name, in.id))
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%s %s\n", line, time.Now().Format(time.RFC3339))
	_ = f.Close()
}
