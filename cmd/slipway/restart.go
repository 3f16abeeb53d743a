package main

// The server's lifetime: run until SIGINT or SIGTERM, and restart in place on SIGHUP.
//
// A restart in place hands over to a new server process started from the same executable
// with the same arguments, without closing the API's listening socket: the kernel keeps
// queueing connections while the processes change, so no request is refused. The apps'
// traffic does not move at all: the data plane process (package dataplane) serves it
// throughout. The order keeps two engines from ever running at once and two platforms from
// ever managing one instance:
//
//  1. the old server stops its engine (and with it every analysis execution);
//  2. its platform holds (starts, restarts and stops no process, sets no traffic entry) and
//     writes its state file for the new server; the old server starts the new one with its
//     API socket and the data directory's lock as inherited file descriptors
//     (SLIPWAY_INHERIT names them) and a pipe to say it is ready on (SLIPWAY_READY_FD);
//  3. the new server opens the store, finds the data plane, adopts the instances (held),
//     waits until their readiness is known, and writes "ready" on the pipe;
//  4. the old server stops accepting (in-flight requests finish) and exits 0, leaving every
//     instance running; the new one then serves the API, resumes its platform and starts its
//     engine, which carries every rollout on from the store.
//
// If the new server is not ready within handoverTimeout (or exits), the old one closes the
// pipe, kills it (it was held, so it changed nothing), resumes its platform and starts a new
// engine: nothing is lost.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway"
	"slipway.dev/slipway/engine"
	"slipway.dev/slipway/fleet"
	"slipway.dev/slipway/handover"
)

// Restart in place.
const (
	// handoverTimeout bounds how long the old server waits for the new one to be ready.
	handoverTimeout = 30 * time.Second
	// parentPoll is how often a new server checks whether the old one has exited.
	parentPoll = 20 * time.Millisecond
	// pidFileName is the file in the data directory that holds the pid of the server serving
	// it (a restart in place changes it).
	pidFileName = "server.pid"
)

// lifetime is a wired server: what runServer built, run by run.
type lifetime struct {
	cfg      serverConfig
	log      *slog.Logger
	platform platformRun
	// fleet is the environments besides the default one; a restart in place holds and
	// resumes them with the default one's platform.
	fleet *fleet.Fleet
	// alongside, when set, runs beside each run of the default environment's engine and
	// stops with it (the pipelines' releases).
	alongside func(ctx context.Context) error
	// tokens authenticates a request about an environment that has no API to do it.
	tokens slipway.TokenManager
	// newEngine returns a new engine and the API handler that drives it; each start of the
	// engine (the first one, and one after a handover that did not happen) takes a new one.
	newEngine func() (*engine.Engine, http.Handler)
	api       net.Listener
	// tls, when set, serves the API over HTTPS (the listener handed over stays plain TCP).
	tls *tls.Config
	// lock is the data directory's lock; a restart in place hands a copy down.
	lock   *os.File
	inh    *handover.Inheritance
	stdout io.Writer
	stderr io.Writer

	handler atomic.Pointer[http.Handler]
}

// run serves until ctx ends (everything stops) or a SIGHUP hands over to a new server
// process (this one exits, its instances keep running; handedOver is true).
func (l *lifetime) run(ctx context.Context) (handedOver bool, err error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// life ends the platform and the API: at the end of run, whether everything stops or
	// this server handed over (then its platform is held and leaves the instances running).
	life, endLife := context.WithCancel(context.Background())
	defer endLife()
	g, gctx := errgroup.WithContext(life)
	if l.platform.run != nil {
		g.Go(func() error { return l.platform.run(gctx) })
	}
	// Streams (SSE) end when the server stops, so stopping does not wait on them. The API's
	// socket may be shared with the next server, so the stop drops no request (Graceful).
	srv := handover.NewGraceful(&http.Server{ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return gctx },
		Handler: l.routes()})
	apiLn := l.api
	if l.tls != nil {
		apiLn = tls.NewListener(l.api, l.tls)
	}
	serveAPI := func() { g.Go(func() error { return srv.Serve(apiLn) }) }
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return srv.Stop(sctx)
	})

	err = func() error {
		eng := l.nextEngine()
		if l.inh.Restarted() {
			if err := l.takeOver(ctx, gctx); err != nil {
				// Still held: the instances keep running for whichever server comes next.
				_ = l.api.Close()
				if ctx.Err() != nil {
					return nil //nolint:nilerr // a stop was asked for: not failing to take over is no error
				}
				return err
			}
		}
		serveAPI()
		if !l.inh.Restarted() {
			writePIDFile(l.cfg.dataDir, l.log)
		}
		if !l.awaitSettled(ctx, gctx) {
			return nil // stopping: nothing was decided yet
		}
		for {
			restart, err := l.runEngine(ctx, gctx, hup, eng)
			if !restart {
				return err
			}
			if err := l.restartInPlace(ctx, l.handoverPlatform()); err != nil {
				l.log.Error("restart in place failed; this server carries on", "err", err)
				writePIDFile(l.cfg.dataDir, l.log) // in case the new server wrote its own
				eng = l.nextEngine()
				continue
			}
			handedOver = true
			return nil
		}
	}()
	endLife()
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	if handedOver {
		l.log.Info("server handed over")
	} else {
		removePIDFile(l.cfg.dataDir)
		l.log.Info("server stopped")
	}
	return handedOver, err
}

// awaitSettled waits until the platform knows the readiness of the instances it adopted
// (platformRun.settled), so that the engine's first decisions never take an instance that
// was not probed yet for one that is not ready: a rolling update would scale it down and
// move its traffic onto fewer instances. It reports false when the server stops first.
func (l *lifetime) awaitSettled(ctx, gctx context.Context) bool {
	if l.platform.settled == nil {
		return true
	}
	select {
	case <-l.platform.settled():
		return true
	case <-ctx.Done():
		return false
	case <-gctx.Done():
		return false
	}
}

// routes serves the API and OFREP: the default environment's at the root, and each
// environment's under /env/NAME/ (envs.go). The handler of the engine running now serves.
func (l *lifetime) routes() http.Handler {
	current := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*l.handler.Load()).ServeHTTP(w, r) })
	gate := envGate{hosts: l.cfg.allowedHosts, tokens: l.tokens, ofrepKeys: l.cfg.ofrepKeys}
	return routeEnvironments(current, gate, func(name string) (http.Handler, error) {
		if name == slipway.DefaultEnvironment {
			return current, nil
		}
		if l.fleet == nil {
			return nil, slipway.Errorf(slipway.ENOTFOUND, "environment %s does not exist on this server", name)
		}
		return l.fleet.Lookup(name)
	})
}

// nextEngine returns a new engine and points the API at it.
func (l *lifetime) nextEngine() *engine.Engine {
	eng, h := l.newEngine()
	l.handler.Store(&h)
	return eng
}

// runEngine runs eng until ctx or gctx ends or it fails, or until SIGHUP asks for a restart
// in place (restart true; the engine has stopped by then).
func (l *lifetime) runEngine(ctx, gctx context.Context, hup <-chan os.Signal, eng *engine.Engine) (restart bool, err error) {
	engCtx, stop := context.WithCancel(gctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- l.runWithEngine(engCtx, eng) }()
	for {
		select {
		case <-ctx.Done():
			stop()
			return false, <-done
		case <-gctx.Done():
			stop()
			return false, <-done
		case err := <-done:
			return false, err
		case <-hup:
		}
		if _, ok := l.platform.Platform.(handover.Platform); !ok {
			l.log.Warn("restart ignored", "reason", "platform "+l.cfg.platform+" cannot hand over its instances")
			continue
		}
		l.log.Info("restart in place requested")
		stop()
		if err := <-done; err != nil {
			l.log.Error("engine stopped with an error before the restart", "err", err)
		}
		return true, nil
	}
}

// runWithEngine runs eng, and beside it what runs alongside, until ctx ends or either fails.
func (l *lifetime) runWithEngine(ctx context.Context, eng *engine.Engine) error {
	if l.alongside == nil {
		return eng.Run(ctx)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return eng.Run(gctx) })
	g.Go(func() error { return l.alongside(gctx) })
	return g.Wait()
}

// restartInPlace starts a new server process with this one's sockets and waits until it is
// ready. On error nothing changed: the platform is resumed and the caller carries on.
func (l *lifetime) restartInPlace(ctx context.Context, hp handover.Platform) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the executable: %w", err)
	}
	apiFile, err := handover.ListenerFile(l.api)
	if err != nil {
		return err
	}
	extra := []*os.File{apiFile}
	spec := []string{handover.APIKey + "=3"}
	if l.lock != nil {
		lock, err := dupFile(l.lock)
		if err != nil {
			_ = apiFile.Close()
			return err
		}
		spec = append(spec, handover.LockKey+"=4")
		extra = append(extra, lock)
	}
	if err := hp.Handover(); err != nil {
		for _, f := range extra {
			_ = f.Close()
		}
		return err
	}
	closeFiles := func() {
		for _, f := range extra {
			_ = f.Close()
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		closeFiles()
		hp.Resume()
		return fmt.Errorf("ready pipe: %w", err)
	}
	readyFD := 3 + len(extra)
	extra = append(extra, w)

	cmd := exec.Command(exe, os.Args[1:]...) //nolint:noctx // the new server outlives this one's contexts
	cmd.Stdout, cmd.Stderr = fileOr(l.stdout, os.Stdout), fileOr(l.stderr, os.Stderr)
	cmd.ExtraFiles = extra
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, handover.EnvInherit+"=") || strings.HasPrefix(kv, handover.EnvReadyFD+"=")
	}), handover.EnvInherit+"="+strings.Join(spec, ","), handover.EnvReadyFD+"="+strconv.Itoa(readyFD))
	err = cmd.Start()
	closeFiles() // the child has its copies; this process keeps serving on its own
	if err != nil {
		_ = r.Close()
		hp.Resume()
		return fmt.Errorf("start the new server: %w", err)
	}
	log := l.log.With("pid", cmd.Process.Pid)
	log.Info("new server started")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()

	t := time.NewTimer(handoverTimeout)
	defer t.Stop()
	var why error
	reaped := false
	select {
	case err := <-ready:
		if err == nil {
			_ = r.Close()
			log.Info("new server ready; this one stops accepting")
			return nil
		}
		why = fmt.Errorf("new server not ready: %w", err)
	case werr := <-exited:
		reaped = true
		why = fmt.Errorf("new server exited before it was ready (%s): %w", cmd.ProcessState, werr)
	case <-t.C:
		why = fmt.Errorf("new server not ready within %v", handoverTimeout)
	case <-ctx.Done():
		why = errors.New("stop requested during the restart")
	}
	// A "ready" written from now on fails (or goes unread): the new server is killed while
	// it is still held, so it has changed nothing.
	_ = r.Close()
	if !reaped {
		_ = cmd.Process.Kill()
		<-exited //nolint:errcheck // killed on purpose: its exit status says nothing new
	}
	hp.Resume()
	return why
}

// takeOver completes a restart in place in the new server: once its platform serves the
// inherited sockets it says "ready" to the old server, waits for it to exit, and resumes the
// platform. An error leaves the platform held.
func (l *lifetime) takeOver(ctx, gctx context.Context) error {
	hp := l.handoverPlatform()
	ok := hp != nil
	if ok {
		t := time.NewTimer(handoverTimeout)
		defer t.Stop()
		select {
		case <-hp.Settled():
		case <-t.C:
			return errors.New("restart: the adopted instances' readiness not known in time")
		case <-ctx.Done():
			return ctx.Err()
		case <-gctx.Done():
			return errors.New("restart: the platform stopped")
		}
	}
	_, err := l.inh.Ready.WriteString("ready\n")
	_ = l.inh.Ready.Close()
	l.inh.Ready = nil
	if err != nil {
		return fmt.Errorf("restart: the old server did not take the ready signal: %w", err)
	}
	writePIDFile(l.cfg.dataDir, l.log)
	// The old server now stops accepting and exits; until it has, it may still finish
	// requests to the instances, so none is stopped before.
	tick := time.NewTicker(parentPoll)
	defer tick.Stop()
	for os.Getppid() == l.inh.Parent {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if ok {
		hp.Resume()
	}
	l.log.Info("took over from the old server", "old", l.inh.Parent)
	return nil
}

// handoverPlatform is what a restart in place holds and resumes: the default environment's
// platform and every environment of the fleet; nil when the default platform cannot hand
// its instances over.
func (l *lifetime) handoverPlatform() handover.Platform {
	hp, ok := l.platform.Platform.(handover.Platform)
	if !ok {
		return nil
	}
	if l.fleet == nil {
		return hp
	}
	return handover.Join(func() []handover.Platform { return []handover.Platform{hp, l.fleet} })
}

// survivePipes keeps a write to a closed stdout or stderr pipe from killing the server
// (Go's default for SIGPIPE on descriptors 1 and 2): a server started by a restart in place
// inherits its predecessor's stdout, whose reader may be long gone. Notify, unlike Ignore,
// leaves the signal's default in place for the instances the server starts. The returned
// function undoes it.
func survivePipes() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGPIPE)
	return func() { signal.Stop(ch) }
}

// fileOr returns w when it is a file (so a child can write to it directly), else def.
func fileOr(w io.Writer, def *os.File) *os.File {
	if f, ok := w.(*os.File); ok {
		return f
	}
	return def
}

// writePIDFile records this process as the data directory's server.
func writePIDFile(dir string, log *slog.Logger) {
	if err := writeFileAtomic(filepath.Join(dir, pidFileName), []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		log.Warn("pid file not written", "err", err)
	}
}

// removePIDFile removes the pid file if it still names this process.
func removePIDFile(dir string) {
	path := filepath.Join(dir, pidFileName)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(path)
	}
}
