package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway"
)

// Probe defaults, as Kubernetes has them.
const (
	// DefaultProbePeriod is how often a probe runs when it says nothing.
	DefaultProbePeriod = time.Second
	// DefaultProbeTimeout is how long one check may take when the probe says nothing.
	DefaultProbeTimeout = time.Second
	// DefaultSuccessThreshold is how many checks in a row must pass to become ready.
	DefaultSuccessThreshold = 1
	// DefaultFailureThreshold is how many checks in a row must fail to become unready (or,
	// for liveness, to be restarted).
	DefaultFailureThreshold = 3
	// startupProbePeriod is how often readiness is checked until it first passes, so that a
	// new instance takes traffic soon after it listens rather than a whole period later.
	startupProbePeriod = 100 * time.Millisecond
)

// probeKind tells readiness from liveness.
type probeKind uint8

const (
	readiness probeKind = iota
	liveness
)

func (k probeKind) String() string {
	if k == liveness {
		return "liveness"
	}
	return "readiness"
}

// probe is a slipway.Probe with its defaults filled in.
type probe struct {
	kind                probeKind
	check               slipway.Probe
	period, timeout     time.Duration
	initialDelay        time.Duration
	success, failure    int
	fastUntilFirstReady bool
}

// newProbe fills in the defaults of p. A nil readiness probe becomes a TCP probe on the
// instance's port; a nil liveness probe returns nil (no liveness checks). A probe that names
// no check (no http, tcp or exec) is a TCP probe.
func newProbe(kind probeKind, p *slipway.Probe) *probe {
	if p == nil {
		if kind == liveness {
			return nil
		}
		p = &slipway.Probe{TCP: &slipway.TCPProbe{}}
	}
	pr := &probe{
		kind: kind, check: *p,
		period: p.Period.D(), timeout: p.Timeout.D(), initialDelay: p.InitialDelay.D(),
		success: p.SuccessThreshold, failure: p.FailureThreshold,
		fastUntilFirstReady: kind == readiness,
	}
	if pr.period <= 0 {
		pr.period = DefaultProbePeriod
	}
	if pr.timeout <= 0 {
		pr.timeout = DefaultProbeTimeout
	}
	if pr.success <= 0 {
		pr.success = DefaultSuccessThreshold
	}
	if pr.failure <= 0 {
		pr.failure = DefaultFailureThreshold
	}
	return pr
}

// probeResult is the outcome of one check.
type probeResult struct {
	kind probeKind
	err  error // nil when the check passed
}

// target is what a probe checks: one process incarnation of an instance.
type target struct {
	port   int
	dir    string
	env    []string
	client *http.Client
}

// loop runs checks until ctx ends, sending each result to out.
func (pr *probe) loop(ctx context.Context, tg target, out chan<- probeResult) {
	if !sleepCtx(ctx, pr.initialDelay) {
		return
	}
	passed := false
	for {
		err := pr.run(ctx, tg)
		if ctx.Err() != nil {
			return
		}
		passed = passed || err == nil
		select {
		case out <- probeResult{kind: pr.kind, err: err}:
		case <-ctx.Done():
			return
		}
		wait := pr.period
		if pr.fastUntilFirstReady && !passed {
			wait = min(wait, startupProbePeriod)
		}
		if !sleepCtx(ctx, wait) {
			return
		}
	}
}

// run performs one check with the probe's timeout.
func (pr *probe) run(ctx context.Context, tg target) error {
	ctx, cancel := context.WithTimeout(ctx, pr.timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tg.port))
	switch {
	case pr.check.HTTP != nil:
		path := pr.check.HTTP.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return fmt.Errorf("http probe: %w", err)
		}
		req.Header.Set("User-Agent", "slipway-probe")
		resp, err := tg.client.Do(req)
		if err != nil {
			return fmt.Errorf("http probe: %w", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("http probe: GET %s answered %s", path, resp.Status)
		}
		return nil
	case pr.check.Exec != nil:
		argv := pr.check.Exec.Command
		if len(argv) == 0 {
			return errors.New("exec probe: no command")
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = tg.dir, tg.env
		cmd.WaitDelay = pr.timeout
		out, err := cmd.CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if len(msg) > 200 {
				msg = msg[:200]
			}
			if msg != "" {
				return fmt.Errorf("exec probe: %w: %s", err, msg)
			}
			return fmt.Errorf("exec probe: %w", err)
		}
		return nil
	default: // TCP
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp probe: %w", err)
		}
		_ = c.Close()
		return nil
	}
}

// sleepCtx waits for d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
