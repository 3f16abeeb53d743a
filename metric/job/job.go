// Package job is the analysis provider that measures by running a command: the measured
// value is {"exitCode": float64, "output": string}, and a job metric without conditions
// passes when the command exits 0.
//
// Start reading at Provider.Measure.
package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"slipway.dev/slipway"
)

// DefaultTimeout bounds a command when the metric sets no timeout.
const DefaultTimeout = 30 * time.Second

// MaxOutput is how much of the command's combined output a measurement keeps.
const MaxOutput = 4 << 10

// waitDelay is how long Measure waits for the output pipe to close once the command has
// exited or been killed.
const waitDelay = time.Second

// Provider measures job metrics.
type Provider struct{}

var _ slipway.Provider = (*Provider)(nil)

// New returns a Provider.
func New() *Provider { return &Provider{} }

// Measure runs the metric's command with its args, and its env added to the server's
// environment, in a process group of its own. At the metric's timeout (DefaultTimeout when
// unset), or when ctx is done, the whole group is killed and Measure returns an error; once
// the command exits, whatever it left running in its group is killed too.
//
// A command that exits, with any code, is a result, not an error: {"exitCode": code,
// "output": the first MaxOutput bytes of stdout and stderr together}. A command killed by a
// signal it did not get from Measure reports 128 plus the signal number. A command that
// cannot start is an error.
func (p *Provider) Measure(ctx context.Context, m slipway.Metric) (any, error) {
	j := m.Provider.Job
	if j == nil {
		return nil, slipway.Errorf(slipway.EINVALID, "metric %s has no job provider", m.Name)
	}
	if j.Command == "" {
		return nil, slipway.Errorf(slipway.EINVALID, "job metric %s has no command", m.Name)
	}
	timeout := j.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(tctx, j.Command, j.Args...)
	cmd.Env = append(os.Environ(), envList(j.Env)...)
	out := &capped{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Stdin = nil
	ownGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = waitDelay

	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", j.Command, err)
	}
	werr := cmd.Wait()
	_ = killGroup(cmd) // whatever the command left behind in its group
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s stopped: %w", j.Command, ctx.Err())
	case tctx.Err() != nil:
		return nil, fmt.Errorf("%s timed out after %s and was killed: %w", j.Command, timeout, tctx.Err())
	}
	var exitErr *exec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) && !errors.Is(werr, exec.ErrWaitDelay) {
		return nil, fmt.Errorf("run %s: %w", j.Command, werr)
	}
	return map[string]any{
		"exitCode": float64(exitStatus(cmd.ProcessState)),
		"output":   out.String(),
	}, nil
}

// envList returns env as KEY=value entries, in key order.
func envList(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]string, 0, len(keys))
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	return list
}

// capped keeps the first max bytes written to it and discards the rest, so that a chatty
// command never blocks on its output.
type capped struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}
