package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"slipway.dev/slipway"
	"slipway.dev/slipway/proxy"
)

// Files of the data plane in the data directory.
const (
	// SocketName is the control socket (mode 0600).
	SocketName = "dataplane.sock"
	// PIDName holds the data plane process's pid.
	PIDName = "dataplane.pid"
	// lockName is locked (flock) by the data plane process for as long as it runs.
	lockName = "dataplane.lock"
	// Protocol is the version of the control protocol; a server talks only to a data plane
	// of its own protocol (Launch replaces another).
	Protocol = 1
	// maxBody caps a request body on the control socket: a table of 10,000 backends is
	// about 1 MiB.
	maxBody = 16 << 20
	// maxReply caps an answer a client reads: the state of every app, at most a few hundred
	// apps of 10,000 backends.
	maxReply = 512 << 20
	// maxDrainWait caps the drain a client may ask for.
	maxDrainWait = time.Minute
)

// serveProtocol is the protocol Serve reports: Protocol (tests of an older data plane
// change it).
var serveProtocol = Protocol

// ServeConfig configures Serve.
type ServeConfig struct {
	// Dir is the data directory: the socket, pid file and lock are made there.
	Dir string
	// Version is the build's version, reported to clients.
	Version string
	// DrainTimeout bounds the requests in flight on a closing listener.
	DrainTimeout time.Duration
	// Log receives the data plane's logs.
	Log *slog.Logger
}

// Serve runs the data plane of Dir until ctx ends or a client asks it to stop: it takes
// Dir's data-plane lock (failing when another data plane holds it), serves the control
// protocol on Dir/dataplane.sock to processes of its own user only, and at the end closes
// every listener, letting requests in flight finish.
func Serve(ctx context.Context, cfg ServeConfig) error {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Close() }()
	sock := filepath.Join(cfg.Dir, SocketName)
	if len(sock) >= maxSocketPath {
		return fmt.Errorf("data plane: the socket path %s is %d bytes long; unix sockets take at most %d: use a shorter --data path", sock, len(sock), maxSocketPath-1)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("data plane: remove stale socket: %w", err)
	}
	reg := prometheus.NewRegistry()
	plane := New(Config{Metrics: proxy.NewMetrics(reg), Log: log, DrainTimeout: cfg.DrainTimeout})
	stop := make(chan struct{}, 1)
	h := &handler{plane: plane, version: cfg.Version, boot: plane.boot, gatherer: reg, stop: stop, log: log}
	ctl := &control{
		srv:  &http.Server{Handler: h.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		sock: sock, log: log, errc: make(chan error, 1),
	}
	if err := ctl.listen(); err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	pidPath := filepath.Join(cfg.Dir, PIDName)
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := os.WriteFile(pidPath, []byte(pid), 0o600); err != nil {
		_ = ctl.srv.Close()
		ctl.remove()
		return fmt.Errorf("data plane: %w", err)
	}
	// ownFiles removes the pid file and the socket, if they are still this data plane's.
	ownFiles := func() {
		if b, err := os.ReadFile(pidPath); err == nil && string(b) == pid {
			_ = os.Remove(pidPath)
		}
		ctl.remove()
	}
	gone := make(chan string, 1)
	wctx, endWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		ctl.watch(wctx, lock, gone)
	}()
	defer func() {
		endWatch()
		<-watched
	}()
	log.Info("data plane serving", "socket", sock, "pid", os.Getpid())
	var superseded error
	select {
	case <-ctx.Done():
	case <-stop:
		log.Info("data plane asked to stop")
	case why := <-gone:
		// No server can reach this data plane any more, and another may serve the directory:
		// its listeners must not keep the apps' ports with tables nobody updates.
		log.Error("the data directory is no longer this data plane's; stopping", "dir", cfg.Dir, "why", why)
		superseded = fmt.Errorf("data plane: stopped: %s", why)
	case err := <-ctl.errc:
		endWatch()
		<-watched
		plane.Close()
		ownFiles()
		return fmt.Errorf("data plane: %w", err)
	}
	endWatch()
	<-watched // binds no socket any more
	// Traffic first: every listener closes with its requests finished. The control socket
	// goes last, so that the stop request gets its answer once traffic has stopped.
	plane.Close()
	ownFiles()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ctl.srv.Shutdown(sctx)
	log.Info("data plane stopped")
	return superseded
}

// watchEvery is how often a data plane checks that its data directory is still its own.
const watchEvery = time.Second

// control is the data plane's control socket, served by srv.
type control struct {
	srv  *http.Server
	sock string
	log  *slog.Logger
	errc chan error // a failure to serve

	mu    sync.Mutex
	bound os.FileInfo // the socket file this data plane bound last
}

// listen binds the socket (mode 0600) and serves the control protocol on it.
func (c *control) listen() error {
	ln, err := net.Listen("unix", c.sock)
	if err != nil {
		return err
	}
	// The path is removed only while it is still this data plane's socket (remove): once
	// the directory was deleted and made again, it may be another data plane's.
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	if err := os.Chmod(c.sock, 0o600); err != nil {
		_ = ln.Close()
		_ = os.Remove(c.sock)
		return err
	}
	fi, err := os.Stat(c.sock)
	if err != nil {
		_ = ln.Close()
		return err
	}
	c.mu.Lock()
	c.bound = fi
	c.mu.Unlock()
	go func() {
		if err := c.srv.Serve(&peerListener{Listener: ln, log: c.log}); !errors.Is(err, http.ErrServerClosed) {
			select {
			case c.errc <- err:
			default:
			}
		}
	}()
	return nil
}

// mine reports whether fi is the socket this data plane bound last.
func (c *control) mine(fi os.FileInfo) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound != nil && os.SameFile(fi, c.bound)
}

// remove removes the socket if it is still this data plane's.
func (c *control) remove() {
	if fi, err := os.Stat(c.sock); err == nil && c.mine(fi) {
		_ = os.Remove(c.sock)
	}
}

// watch checks every watchEvery, until ctx ends, that the data directory is still this
// data plane's. When its lock file was removed (the directory was deleted: another data
// plane may lock a new one) or another file took the socket's path, it sends why on gone
// and returns. A socket removed by itself is bound again: the lock is still this data
// plane's, and a server can reach it again (one whose directory was moved cannot).
func (c *control) watch(ctx context.Context, lock *os.File, gone chan<- string) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if unlinked(lock) {
			gone <- "its lock file " + lock.Name() + " was removed"
			return
		}
		fi, err := os.Stat(c.sock)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := c.listen(); err != nil {
				if msg := err.Error(); msg != lastErr {
					lastErr = msg
					c.log.Error("the control socket was removed and cannot be bound again", "socket", c.sock, "err", err)
				}
				continue
			}
			c.log.Warn("the control socket was removed; bound again", "socket", c.sock)
		case err == nil && !c.mine(fi):
			gone <- "another file took its socket's path " + c.sock
			return
		}
		lastErr = ""
	}
}

// handler serves the control protocol.
type handler struct {
	plane    *Plane
	version  string
	boot     string
	gatherer prometheus.Gatherer
	stop     chan struct{}
	log      *slog.Logger
}

// stateReply is GET /v1/state's answer (without apps for GET /v1/state?apps=none).
type stateReply struct {
	Protocol int               `json:"protocol"`
	Version  string            `json:"version"`
	PID      int               `json:"pid"`
	Boot     string            `json:"boot"`
	Apps     map[string]Status `json:"apps"`
}

func (h *handler) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) {
		reply := stateReply{Protocol: serveProtocol, Version: h.version, PID: os.Getpid(), Boot: h.boot}
		// ?apps=none: who the data plane is, without the tables (Client.Boot, every second).
		if r.URL.Query().Get("apps") != "none" {
			apps, err := h.plane.State(r.Context())
			if err != nil {
				writeError(w, err)
				return
			}
			reply.Apps = apps
		}
		writeJSON(w, reply)
	})
	mux.HandleFunc("PUT /v1/apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		var s Spec
		if err := readJSON(w, r, &s); err != nil {
			writeError(w, err)
			return
		}
		st, err := h.plane.Set(r.Context(), r.PathValue("app"), s)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("DELETE /v1/apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		if err := h.plane.Remove(r.Context(), r.PathValue("app")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/apps/{app}/drain", func(w http.ResponseWriter, r *http.Request) {
		backend := r.URL.Query().Get("backend")
		if err := slipway.ValidKey("backend", backend); err != nil {
			writeError(w, err)
			return
		}
		if err := h.plane.Drain(r.Context(), r.PathValue("app"), backend); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/window", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		d, err := time.ParseDuration(q.Get("d"))
		if err != nil || d <= 0 {
			writeError(w, slipway.Errorf(slipway.EINVALID, "d: %q is not a positive duration", q.Get("d")))
			return
		}
		win, err := h.plane.RequestWindow(r.Context(), q.Get("app"), q.Get("revision"), d)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, win)
	})
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case h.stop <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.gatherer, promhttp.HandlerOpts{}))
	return mux
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return slipway.Errorf(slipway.EINVALID, "request body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers err as a slipway.Error with a status by its code.
func writeError(w http.ResponseWriter, err error) {
	code := slipway.ErrorCode(err)
	status := http.StatusInternalServerError
	switch code {
	case slipway.EINVALID:
		status = http.StatusBadRequest
	case slipway.ECONFLICT:
		status = http.StatusConflict
	case slipway.EUNAVAILABLE:
		status = http.StatusServiceUnavailable
	}
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(slipway.Error{Code: code, Message: err.Error()})
}
