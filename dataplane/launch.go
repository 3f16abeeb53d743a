package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// EnvMark marks the data plane process in its environment with its absolute data
// directory, so that tests and operators can find it (/proc/PID/environ).
const EnvMark = "SLIPWAY_DATAPLANE"

// Launch timings.
const (
	// startTimeout bounds how long a new data plane has to answer on its socket.
	startTimeout = 10 * time.Second
	// startPoll is how often a starting data plane is asked whether it is up.
	startPoll = 20 * time.Millisecond
)

// LaunchConfig configures Launch.
type LaunchConfig struct {
	// Dir is the data directory.
	Dir string
	// Command runs a data plane for Dir (`slipway dataplane --data DIR`).
	Command []string
	// Log receives what Launch did.
	Log *slog.Logger
	// OnExit, when set, is called when a data plane this process started ends (the one
	// Launch started, once it answered).
	OnExit func()
}

// Launch returns a Client for Dir's data plane: the one already running when it answers
// with this build's protocol (after a crash or a restart of the server it kept serving),
// or a new one started with Command in a session of its own, so that it outlives the
// server. A data plane of another protocol is stopped first (its requests in flight
// finish; until the new one listens, connections to the apps are refused). The new
// process writes its output to Dir/logs/dataplane.log.
func Launch(ctx context.Context, cfg LaunchConfig) (*Client, Info, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := Dial(cfg.Dir)
	if info, err := c.Info(ctx); err == nil {
		if info.Protocol == Protocol {
			log.Info("data plane found running; it kept serving", "pid", info.PID, "version", info.Version, "apps", len(info.Apps))
			return c, info, nil
		}
		log.Warn("data plane of another protocol; replacing it (connections are refused until the new one listens)",
			"pid", info.PID, "protocol", info.Protocol, "want", Protocol)
		if err := c.Stop(ctx); err != nil {
			return nil, Info{}, fmt.Errorf("stop the data plane of protocol %d: %w", info.Protocol, err)
		}
	}
	if len(cfg.Command) == 0 {
		return nil, Info{}, errors.New("data plane: no command to start one with")
	}
	// Not with an ended context (a Supervisor whose caller's time went on a hung data
	// plane): the process would be killed as soon as it started.
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, Info{}, err
	}
	logDir := filepath.Join(cfg.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, Info{}, fmt.Errorf("data plane: %w", err)
	}
	logPath := filepath.Join(logDir, "dataplane.log")
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, Info{}, fmt.Errorf("data plane: %w", err)
	}
	defer func() { _ = out.Close() }()
	// Not CommandContext: the data plane outlives this process's contexts, and the server.
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...) //nolint:gosec,noctx // the server's own executable
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), EnvMark+"="+abs)
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return nil, Info{}, fmt.Errorf("data plane: start: %w", err)
	}
	exited := make(chan error, 1)
	answered := make(chan struct{})
	go func() { // reaps it when it stops while this process lives
		err := cmd.Wait()
		exited <- err
		select {
		case <-answered:
			if cfg.OnExit != nil {
				cfg.OnExit()
			}
		default:
		}
	}()
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(startPoll)
	defer tick.Stop()
	for {
		info, err := c.Info(ctx)
		if err == nil && info.Protocol != Protocol {
			// The executable on disk is another build than this process (it was replaced).
			_ = cmd.Process.Kill()
			return nil, Info{}, fmt.Errorf("data plane started from %s speaks protocol %d, this server %d: restart the server from the new executable", cfg.Command[0], info.Protocol, Protocol)
		}
		if err == nil {
			log.Info("data plane started", "pid", info.PID, "log", logPath)
			close(answered)
			return c, info, nil
		}
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exit status 0")
			}
			return nil, Info{}, fmt.Errorf("data plane exited at start (%w): %s", err, lastLines(logPath, 5))
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return nil, Info{}, fmt.Errorf("data plane did not answer within %s: %s", startTimeout, lastLines(logPath, 5))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return nil, Info{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// lastLines returns the last n lines of the file at path, for an error message.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// waitGone waits until process pid has ended, at most until ctx ends.
func waitGone(ctx context.Context, pid int) error {
	tick := time.NewTicker(startPoll)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("data plane pid %d still running: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// relaunchEvery bounds how often a Supervisor starts a data plane.
const relaunchEvery = time.Second

// Supervisor is a Client that starts a new data plane when the one it drives is gone (it
// was killed, or crashed): Boot, which the local platform calls every second, launches one
// (at most once per relaunchEvery) when the data plane does not answer. The new data plane
// has a new boot word and no traffic entries; the platform sets them all again.
type Supervisor struct {
	*Client
	cfg LaunchConfig
	// changed gets a value when a data plane this process started ended, so that the
	// platform asks for the boot word (and a new one is started) at once.
	changed chan struct{}

	mu   sync.Mutex
	last time.Time
}

// Changed returns a channel that gets a value when a data plane this process started ends;
// one started by another server is noticed by Boot only.
func (s *Supervisor) Changed() <-chan struct{} { return s.changed }

// Supervise launches Dir's data plane (Launch) and returns a Supervisor for it.
func Supervise(ctx context.Context, cfg LaunchConfig) (*Supervisor, Info, error) {
	s := &Supervisor{cfg: cfg, changed: make(chan struct{}, 1)}
	s.cfg.OnExit = func() {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
	c, info, err := Launch(ctx, s.cfg)
	if err != nil {
		return nil, Info{}, err
	}
	s.Client, s.last = c, time.Now()
	return s, info, nil
}

// Boot returns the boot word of the data plane, starting a new one when none answers.
func (s *Supervisor) Boot(ctx context.Context) (string, error) {
	b, err := s.Client.Boot(ctx)
	if err == nil {
		return b, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.last) < relaunchEvery {
		return "", err
	}
	s.last = time.Now()
	log := s.cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Error("the data plane does not answer; starting a new one", "err", err)
	_, info, lerr := Launch(ctx, s.cfg)
	if lerr != nil {
		return "", fmt.Errorf("%w; a new data plane did not start: %w", err, lerr)
	}
	return info.Boot, nil
}
