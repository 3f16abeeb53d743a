package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway"
	"slipway.dev/slipway/demo"
	"slipway.dev/slipway/httpapi"
	"slipway.dev/slipway/spec"
)

// The demo's timings.
const (
	// demoQuiet is how long the load generator must not have seen the rolled-back revision
	// before all traffic counts as back on stable.
	demoQuiet = time.Second
	// demoTick is how often the demo reads the status; demoLineEvery is how often it prints
	// a progress line when nothing changed.
	demoTick      = 100 * time.Millisecond
	demoLineEvery = 500 * time.Millisecond
	// demoRateWindow is the span the per-revision request and error rates are taken over.
	demoRateWindow = time.Second
	// Bounds of each phase, so that a demo that misbehaves ends with a reason.
	demoServerStart  = 20 * time.Second
	demoFirstDeploy  = 60 * time.Second
	demoRolloutLimit = 90 * time.Second
	demoTrafficOff   = 20 * time.Second
	demoStop         = 30 * time.Second
)

// demoConfig is what the demo's flags set.
type demoConfig struct {
	keep bool
	runs int
	json bool
	rate int
	app  demo.Options // the canary's first weight and the analysis
}

func newDemoCommand() *cobra.Command {
	cfg := demoConfig{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch slipway promote a good canary and roll back a bad one by itself",
		Long: `Run slipway's demo with nothing but this binary: it starts a slipway server (platform
local) in a temporary directory, deploys the app "demo" (4 instances of a small HTTP service,
behind slipway's own proxy) and keeps a steady load on it, then:

  v2  a healthy canary: 20% of the traffic (--weight), analysis, 50%, analysis, a pause;
      promoted.
  v3  a canary that fails 20% of its requests: the builtin error-rate analysis fails and
      slipway rolls back to v2 by itself.

The analysis (--analysis) compares the canary's errors with the stable's by a sequential
test on every request since it began (sequential, the default), or judges a 2s window of
the canary's error rate against 5% (threshold).

It prints the progress as it goes and a summary: requests served per revision, requests
that failed for users of the stable revision (0), and how long it took from v3's first
failing answer until all traffic was back on stable. It exits 0 when everything behaved.

With --keep the server keeps running after the summary, for you to explore with the other
commands, until Ctrl-C. Every process the demo started stops when it exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.runs < 1 {
				return errors.New("--runs must be 1 or more")
			}
			if cfg.rate < 10 {
				return errors.New("--rate must be 10 requests per second or more")
			}
			if w := cfg.app.Weight; w < 1 || w > 49 {
				return errors.New("--weight must be from 1 to 49 percent")
			}
			if !slices.Contains(demo.Analyses(), cfg.app.Analysis) {
				return fmt.Errorf("--analysis must be %s", strings.Join(demo.Analyses(), " or "))
			}
			out := cmd.OutOrStdout()
			progress := out
			if cfg.json {
				progress = cmd.ErrOrStderr()
			}
			return runDemo(cmd.Context(), cfg, out, progress)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.keep, "keep", false, "leave the server and the app running after the summary, until Ctrl-C")
	f.IntVar(&cfg.rate, "rate", demo.DefaultRate, "requests per second the load generator sends")
	f.IntVar(&cfg.app.Weight, "weight", demo.DefaultWeight, "the canary's weight, in percent, at its first step")
	f.StringVar(&cfg.app.Analysis, "analysis", demo.AnalysisSequential, "how the canary is judged: sequential (canary against stable, fails as soon as the evidence is there) or threshold (a 2s error-rate window under 5%)")
	f.IntVar(&cfg.runs, "runs", 1, "how many bad canaries to roll out and measure (v3, v4, ...)")
	f.BoolVar(&cfg.json, "json", false, "print the measured figures as JSON on stdout (progress goes to stderr)")
	_ = f.MarkHidden("runs")
	_ = f.MarkHidden("json")
	return cmd
}

// demoRun is one run of the demo.
type demoRun struct {
	cfg      demoConfig
	out      io.Writer // progress lines
	exe      string
	dir      string
	apiURL   string
	listen   string
	api      *httpapi.Client
	load     *demo.Load
	start    time.Time
	progress *demoProgress
}

// runDemo runs the demo until it ends (or ctx does, or --keep until ctx does) and stops the
// server it started, with every instance, before it returns.
func runDemo(ctx context.Context, cfg demoConfig, stdout, progress io.Writer) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to run as the demo app: %w", err)
	}
	dir, err := os.MkdirTemp("", "slipway-demo-")
	if err != nil {
		return fmt.Errorf("create the demo directory: %w", err)
	}
	d := &demoRun{cfg: cfg, out: progress, exe: exe, dir: dir, start: time.Now()}
	d.progress = &demoProgress{d: d, versions: map[string]string{}}

	srv, err := d.startServer(ctx)
	if err != nil {
		return errors.Join(err, d.cleanup(srv, true))
	}
	defer func() {
		// Keep the directory, with the logs, when the demo failed, not when it was interrupted.
		if cerr := d.cleanup(srv, err != nil && ctx.Err() == nil); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	res, err := d.play(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return &exitStatus{code: exitError, err: errors.New("interrupted")}
		}
		return err
	}
	if cfg.json {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	}
	d.summary(res)
	if cfg.keep {
		d.keepRunning(ctx)
	}
	if len(res.Problems) > 0 {
		return &exitStatus{code: exitError, err: fmt.Errorf("the demo did not behave: %s", strings.Join(res.Problems, "; "))}
	}
	return nil
}

// demoServer is the `slipway server` child process the demo runs.
type demoServer struct {
	cmd  *exec.Cmd
	done chan error // gets the result of Wait, once
	log  string
}

// startServer starts `slipway server --platform local` as a child process, with its data
// and its logs in the demo directory, and returns once it listens. A server of its own (not
// one in this process) keeps the demo apart from the server's own signal handling.
func (d *demoRun) startServer(ctx context.Context) (*demoServer, error) {
	logPath := filepath.Join(d.dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create the server log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	// Should ctx end first, the server gets Ctrl-C as well, and is killed demoStop later.
	cmd := exec.CommandContext(ctx, d.exe, "server", "--platform", "local", "--listen", "127.0.0.1:0",
		"--data", filepath.Join(d.dir, "data"), "--log-level", "info")
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SLIPWAY_") })
	cmd.Stderr = logFile
	cmd.SysProcAttr = demoServerAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = demoStop
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start the slipway server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the slipway server: %w", err)
	}
	srv := &demoServer{cmd: cmd, done: make(chan error, 1), log: logPath}
	addr := make(chan string, 1)
	go func() {
		// The first line is the banner with the API's address; the rest goes to the log.
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		_, _ = logFile.WriteString(line)
		if i := strings.Index(line, "http://"); i >= 0 {
			addr <- strings.Fields(line[i:])[0]
		}
		_, _ = io.Copy(logFile, br)
		srv.done <- cmd.Wait()
	}()
	timer := time.NewTimer(demoServerStart)
	defer timer.Stop()
	select {
	case d.apiURL = <-addr:
	case err := <-srv.done:
		srv.done <- err
		return srv, fmt.Errorf("the slipway server did not start (see %s): %w", logPath, err)
	case <-timer.C:
		return srv, fmt.Errorf("the slipway server did not start within %s (see %s)", demoServerStart, logPath)
	case <-ctx.Done():
		return srv, ctx.Err()
	}
	d.api = httpapi.NewClient(d.apiURL, nil)
	secret, err := readSecret(filepath.Join(d.dir, "data", adminTokenFile))
	if err != nil {
		return srv, fmt.Errorf("read the demo server's admin token: %w", err)
	}
	d.api.SetToken(secret)
	return srv, nil
}

// stop asks the server to stop (as Ctrl-C does) and waits until it has, and with it every
// app instance; it kills it after demoStop.
func (s *demoServer) stop() error {
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop the slipway server: %w", err)
	}
	timer := time.NewTimer(demoStop)
	defer timer.Stop()
	select {
	case err := <-s.done:
		// Stopped by the signal, or with the demo's ctx (Ctrl-C reached it too): fine.
		var ee *exec.ExitError
		if err == nil || errors.Is(err, context.Canceled) || (errors.As(err, &ee) && !ee.Exited()) {
			return nil
		}
		return fmt.Errorf("the slipway server (see %s): %w", s.log, err)
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("the slipway server did not stop within %s; killed it (see %s): %w", demoStop, s.log, <-s.done)
	}
}

// cleanup stops the server, then removes the demo directory, or keeps it to read its logs
// when the demo failed.
func (d *demoRun) cleanup(srv *demoServer, failed bool) error {
	var err error
	if srv != nil {
		err = srv.stop()
	}
	if err != nil {
		fmt.Fprintf(d.out, "%v\n", err)
	}
	if failed || err != nil {
		fmt.Fprintf(d.out, "The demo directory is kept for its logs: %s\n", d.dir)
		return err
	}
	if rerr := os.RemoveAll(d.dir); rerr != nil {
		return fmt.Errorf("remove the demo directory: %w", rerr)
	}
	return nil
}

// demoResult is what the demo measured; --json prints it.
type demoResult struct {
	Server   string                 `json:"server"`
	Listen   string                 `json:"listen"`
	Promoted demoRollout            `json:"promoted"`
	Bad      []demoRollout          `json:"bad"`
	Requests map[string]demoRequest `json:"requests"`
	// StableFailures counts requests that failed for users of the stable revision: every
	// failure not answered by a bad canary (including the proxy's own and transport errors).
	StableFailures int64 `json:"stableFailures"`
	// RollbackSeconds summarises Bad[].RollbackSeconds.
	RollbackSeconds *demoStats `json:"rollbackSeconds,omitempty"`
	Problems        []string   `json:"problems,omitempty"`
	OK              bool       `json:"ok"`
}

// demoRollout is one rollout of the demo.
type demoRollout struct {
	Version string        `json:"version"`
	Phase   slipway.Phase `json:"phase"`
	Reason  string        `json:"reason,omitempty"`
	Seconds float64       `json:"seconds"`
	// For a bad canary: when the load generator got its first failing answer, how long
	// until slipway aborted the rollout, and how long until the proxy sent it nothing more
	// (its last answer).
	FirstFailure    *time.Time `json:"firstFailure,omitempty"`
	AbortSeconds    float64    `json:"abortSeconds,omitempty"`
	RollbackSeconds float64    `json:"rollbackSeconds,omitempty"`
}

// demoRequest is what one version answered the load generator.
type demoRequest struct {
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
}

// demoStats are the minimum, median and maximum of some figures.
type demoStats struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// play deploys v1, puts the load on, rolls out v2 and the bad canaries, and returns what it
// measured. An error means the demo could not go on (ctx ended, the server failed).
func (d *demoRun) play(ctx context.Context) (demoResult, error) {
	listen, err := freeAddr(ctx)
	if err != nil {
		return demoResult{}, err
	}
	d.listen = listen
	res := demoResult{Server: d.apiURL, Listen: "http://" + listen}
	d.printf("slipway demo: a canary that is promoted, then a bad one that slipway rolls back by itself.\n")
	d.printf("  server  %s (platform local; data and logs in %s)\n", d.apiURL, d.dir)
	d.printf("  app     %s: %d instances of `slipway demo-app` behind slipway's proxy at http://%s\n", demo.AppName, demo.Replicas, listen)
	d.printf("  load    %d requests/s, counted by the version that answers\n", d.cfg.rate)
	d.printf("  canary  %d%% at first, judged by %s analysis\n\n", d.cfg.app.Weight, d.cfg.app.Analysis)

	if _, err := d.deploy(ctx, "v1", "", demoFirstDeploy); err != nil {
		return res, err
	}
	d.load = &demo.Load{URL: "http://" + listen + "/", Rate: d.cfg.rate}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.load.Run(loadCtx) })
	defer func() {
		stopLoad()
		wg.Wait()
	}()
	if err := d.sleep(ctx, time.Second); err != nil { // let the viewer see steady v1 traffic
		return res, err
	}

	res.Promoted, err = d.deploy(ctx, "v2", "", demoRolloutLimit)
	if err != nil {
		return res, err
	}
	if res.Promoted.Phase != slipway.PhaseCompleted {
		res.Problems = append(res.Problems, fmt.Sprintf("v2 (healthy) ended %s, not Completed: %s", res.Promoted.Phase, res.Promoted.Reason))
	}
	bad := map[string]bool{}
	for i := range d.cfg.runs {
		if i == 0 {
			if err := d.sleep(ctx, time.Second); err != nil {
				return res, err
			}
		}
		version := "v" + strconv.Itoa(3+i)
		bad[version] = true
		r, err := d.deploy(ctx, version, demo.BadErrorRate, demoRolloutLimit)
		if err != nil {
			return res, err
		}
		if r.Phase != slipway.PhaseAborted {
			res.Problems = append(res.Problems, fmt.Sprintf("%s (bad) ended %s, not Aborted", version, r.Phase))
		} else if err := d.measureRollback(ctx, &r); err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			res.Problems = append(res.Problems, err.Error())
		}
		res.Bad = append(res.Bad, r)
	}
	stopLoad()
	wg.Wait()

	res.Requests = map[string]demoRequest{}
	for v, c := range d.load.Counts() {
		name := v
		if name == "" {
			name = "none" // failures that no instance answered
		}
		res.Requests[name] = demoRequest{Requests: c.Requests, Failed: c.Failed}
		if !bad[v] {
			res.StableFailures += c.Failed
		}
	}
	if res.StableFailures > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d requests failed for users of the stable revision", res.StableFailures))
	}
	var secs []float64
	for _, r := range res.Bad {
		if r.RollbackSeconds > 0 {
			secs = append(secs, r.RollbackSeconds)
		}
	}
	if len(secs) > 0 {
		res.RollbackSeconds = stats(secs)
	}
	res.OK = len(res.Problems) == 0
	return res, nil
}

// deploy applies the demo app at version (failing errorRate of its requests when not "")
// and follows its rollout until it ends.
func (d *demoRun) deploy(ctx context.Context, version, errorRate string, limit time.Duration) (demoRollout, error) {
	name := fmt.Sprintf("demo-%s.yaml", version)
	data := demo.File(d.exe, d.listen, version, errorRate, d.cfg.app)
	set, err := spec.Parse(name, data)
	if err != nil {
		return demoRollout{}, fmt.Errorf("the demo's own file %s is invalid: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, name), data, 0o600); err != nil {
		return demoRollout{}, fmt.Errorf("write %s: %w", name, err)
	}
	what := "healthy"
	if errorRate != "" {
		what = "fails " + errorRate + " of its requests"
	}
	if version == "v1" {
		d.printf("%s  apply %s: first deploy of %d instances\n", d.clock(), version, demo.Replicas)
	} else {
		d.printf("%s  apply %s (%s): canary rollout\n", d.clock(), version, what)
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = d.api.Apply(actx, set, slipway.ApplyOptions{Actor: "demo"})
	cancel()
	if err != nil {
		return demoRollout{}, fmt.Errorf("apply %s: %w", name, err)
	}
	started := time.Now()
	r, err := d.follow(ctx, version, limit)
	if err != nil {
		return demoRollout{}, err
	}
	return demoRollout{Version: version, Phase: r.Phase, Reason: r.Reason, Seconds: time.Since(started).Seconds()}, nil
}

// follow prints progress until the rollout to version ends, and returns it.
func (d *demoRun) follow(ctx context.Context, version string, limit time.Duration) (slipway.RolloutStatus, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := d.status(ctx)
		if err != nil {
			return slipway.RolloutStatus{}, err
		}
		r := st.Rollout
		mine := r != nil && r.Version == version
		d.progress.update(st, mine && r.Phase.Terminal())
		switch {
		case mine && r.Phase.Terminal():
			return *r, nil
		case mine && r.Phase == slipway.PhasePaused:
			return *r, fmt.Errorf("the %s rollout paused: %s", version, orDash(r.Reason))
		}
		if time.Now().After(deadline) {
			return slipway.RolloutStatus{}, fmt.Errorf("the %s rollout did not end within %s", version, limit)
		}
		if err := d.sleep(ctx, demoTick); err != nil {
			return slipway.RolloutStatus{}, err
		}
	}
}

// measureRollback waits until the load generator has not seen the aborted revision r for
// demoQuiet and fills in r's figures.
func (d *demoRun) measureRollback(ctx context.Context, r *demoRollout) error {
	st, err := d.status(ctx)
	if err != nil {
		return err
	}
	var abortedAt time.Time
	if st.Rollout != nil && st.Rollout.Version == r.Version && st.Rollout.CompletedAt != nil {
		abortedAt = *st.Rollout.CompletedAt
	}
	deadline := time.Now().Add(demoTrafficOff)
	for {
		c := d.load.Counts()[r.Version]
		if c.FirstFailure.IsZero() {
			return fmt.Errorf("%s was rolled back, but the load generator never got a failing answer from it", r.Version)
		}
		now := time.Now()
		if now.Sub(c.LastSeen) >= demoQuiet {
			first := c.FirstFailure
			r.FirstFailure = &first
			r.RollbackSeconds = c.LastSeen.Sub(first).Seconds()
			if !abortedAt.IsZero() {
				r.AbortSeconds = abortedAt.Sub(first).Seconds()
			}
			d.printf("%s  %s: all traffic back on stable %.2fs after its first failing answer\n", d.clock(), r.Version, r.RollbackSeconds)
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("%s still answered requests %s after it was rolled back", r.Version, demoTrafficOff)
		}
		st, err := d.status(ctx)
		if err != nil {
			return err
		}
		d.progress.update(st, false)
		if err := d.sleep(ctx, demoTick); err != nil {
			return err
		}
	}
}

// status reads the app's status, retrying briefly: the server runs in this process, so an
// error that lasts means it has stopped.
func (d *demoRun) status(ctx context.Context) (slipway.AppStatus, error) {
	var last error
	for range 20 {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := d.api.Status(sctx, demo.AppName)
		cancel()
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		last = err
		if err := d.sleep(ctx, demoTick); err != nil {
			return st, err
		}
	}
	return slipway.AppStatus{}, fmt.Errorf("read the status of %s: %w", demo.AppName, last)
}

// summary prints what the demo measured.
func (d *demoRun) summary(res demoResult) {
	d.printf("\nSummary\n")
	d.printf("  requests served by revision:")
	for _, v := range sortedVersions(res.Requests) {
		c := res.Requests[v]
		d.printf("  %s %d", v, c.Requests)
		if c.Failed > 0 {
			d.printf(" (%d failed)", c.Failed)
		}
	}
	d.printf("\n")
	d.printf("  requests failed for users of stable: %d\n", res.StableFailures)
	d.printf("  v2 (healthy): %s in %.1fs\n", res.Promoted.Phase, res.Promoted.Seconds)
	for _, r := range res.Bad {
		d.printf("  %s (bad): %s in %.1fs", r.Version, r.Phase, r.Seconds)
		if r.FirstFailure != nil {
			d.printf("; aborted %.2fs after its first failing answer", r.AbortSeconds)
		}
		d.printf("\n")
		if r.Reason != "" {
			d.printf("      %s\n", escape(r.Reason))
		}
	}
	if s := res.RollbackSeconds; s != nil {
		if s.N == 1 {
			d.printf("  time from the bad canary's first failing answer to all traffic on stable: %.2fs\n", s.Median)
		} else {
			d.printf("  time from a bad canary's first failing answer to all traffic on stable (%d runs): min %.2fs, median %.2fs, max %.2fs\n",
				s.N, s.Min, s.Median, s.Max)
		}
	}
	if res.OK {
		d.printf("OK: v2 was promoted, the bad canary was rolled back by itself, and no user of the stable revision saw a failure.\n")
	} else {
		d.printf("NOT OK: %s\n", strings.Join(res.Problems, "; "))
	}
}

// keepRunning leaves the server up until ctx ends.
func (d *demoRun) keepRunning(ctx context.Context) {
	d.printf("\nThe server and the app keep running; press Ctrl-C to stop them. Try:\n")
	d.printf("  export SLIPWAY_SERVER=%s\n", d.apiURL)
	d.printf("  slipway status %s\n  slipway history %s\n  slipway events %s\n", demo.AppName, demo.AppName, demo.AppName)
	d.printf("  curl http://%s/\n", d.listen)
	<-ctx.Done()
	d.printf("\nStopping the server and the app.\n")
}

func (d *demoRun) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

// clock is the time since the demo started, for the left column.
func (d *demoRun) clock() string { return fmt.Sprintf("%6.1fs", time.Since(d.start).Seconds()) }

func (d *demoRun) sleep(ctx context.Context, dur time.Duration) error {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago, for the app's proxy.
func freeAddr(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for the demo app: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("find a free port for the demo app: %w", err)
	}
	return addr, nil
}

// demoProgress prints one line when the rollout's state changes, and every demoLineEvery
// otherwise: time, version, step, the observed split and, per revision, the request and
// error rates the load generator saw over the last demoRateWindow.
type demoProgress struct {
	d        *demoRun
	versions map[string]string // revision ID -> version
	history  []demoCounts
	lastKey  string
	lastLine time.Time
}

// demoCounts are the load generator's counts at a time.
type demoCounts struct {
	at     time.Time
	counts map[string]demo.Count
}

func (p *demoProgress) update(st slipway.AppStatus, final bool) {
	now := time.Now()
	for _, l := range st.Live {
		if l.Version != "" {
			p.versions[l.Revision] = l.Version
		}
	}
	if st.Stable != nil && st.Stable.Version != "" {
		p.versions[st.Stable.Revision] = st.Stable.Version
	}
	r := st.Rollout
	if r != nil && r.Version != "" {
		p.versions[r.Revision] = r.Version
	}
	if p.d.load != nil {
		p.history = append(p.history, demoCounts{at: now, counts: p.d.load.Counts()})
		for len(p.history) > 1 && now.Sub(p.history[1].at) >= demoRateWindow {
			p.history = p.history[1:]
		}
	}
	state, split := p.state(r), p.split(st.Split)
	key := state + "|" + split
	if !final && key == p.lastKey && now.Sub(p.lastLine) < demoLineEvery {
		return
	}
	p.lastKey, p.lastLine = key, now
	p.d.printf("%s  %-26s %-22s %s\n", p.d.clock(), state, split, p.rates())
	if final && r != nil && r.Reason != "" && r.Phase == slipway.PhaseAborted {
		reason := r.Reason
		if len(reason) > 150 {
			reason = reason[:147] + "..."
		}
		p.d.printf("%s  %s rolled back: %s\n", p.d.clock(), r.Version, escape(reason))
	}
}

// state names the rollout's version, phase and step.
func (p *demoProgress) state(r *slipway.RolloutStatus) string {
	if r == nil {
		return "waiting"
	}
	steps := demo.Steps(p.d.cfg.app)
	switch {
	case r.Phase.Terminal():
		return fmt.Sprintf("%s %s", r.Version, r.Phase)
	case r.From == "":
		return fmt.Sprintf("%s starting", r.Version)
	case r.Phase == slipway.PhasePaused:
		return fmt.Sprintf("%s paused", r.Version)
	case r.Step < len(steps):
		return fmt.Sprintf("%s step %d/%d %s", r.Version, r.Step+1, len(steps), steps[r.Step].Label)
	}
	return fmt.Sprintf("%s promoting", r.Version)
}

// split writes the observed split as "v2 20% v1 80%".
func (p *demoProgress) split(s slipway.Split) string {
	if len(s.Weights) == 0 {
		return "no traffic yet"
	}
	var parts []string
	for _, w := range s.Weights {
		v := p.versions[w.Revision]
		if v == "" {
			v = w.Revision
		}
		parts = append(parts, fmt.Sprintf("%s %d%%", v, w.Weight))
	}
	return strings.Join(parts, " ")
}

// rates writes each version's requests per second and error share over the history.
func (p *demoProgress) rates() string {
	if len(p.history) < 2 {
		return ""
	}
	first, last := p.history[0], p.history[len(p.history)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt < 0.2 {
		return ""
	}
	var versions []string
	for v := range last.counts {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	var parts []string
	for _, v := range versions {
		n := last.counts[v].Requests - first.counts[v].Requests
		if n == 0 {
			continue
		}
		failed := last.counts[v].Failed - first.counts[v].Failed
		if v == "" {
			v = "none"
		}
		parts = append(parts, fmt.Sprintf("%s %3.0f/s %4.1f%% err", v, float64(n)/dt, 100*float64(failed)/float64(n)))
	}
	return strings.Join(parts, "   ")
}

// versionLess orders v1 < v2 < v10, and "" (no version) last.
func versionLess(a, b string) bool {
	switch {
	case a == "" || a == "none":
		return false
	case b == "" || b == "none":
		return true
	case len(a) != len(b):
		return len(a) < len(b)
	}
	return a < b
}

func sortedVersions(m map[string]demoRequest) []string {
	out := make([]string, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i], out[j]) })
	return out
}

// stats returns the minimum, median and maximum of xs (not empty).
func stats(xs []float64) *demoStats {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return &demoStats{Min: s[0], Median: med, Max: s[n-1], N: n}
}
