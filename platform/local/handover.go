package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"slipway.dev/slipway"
)

// Handing over to another server process.
//
// A restart of the server in place runs two server processes for a moment: the old one calls
// Handover and the new one starts with Config.StartHeld and the old one's listening sockets in
// Config.Inherit. Both serve the same sockets (the kernel gives each new connection to one of
// them), so no connection is refused while the processes change. While a Platform is held it
// starts, restarts and stops no process and writes no state file, and when its Run ends it
// leaves every instance running; its proxies keep serving and its probes keep their tables
// current. So two processes never both manage an instance: the old one lets go at Handover,
// the new one takes over at Resume, and the state file written at Handover carries the
// instances from one to the other.

// warmTimeout bounds how long an inherited listener waits for the adopted instances that
// were taking traffic at the handover to pass readiness again before it is served anyway.
const warmTimeout = 10 * time.Second

var (
	// errHeld is why an instance was not started: the Platform is held.
	errHeld = errors.New("platform held for a handover")
	// errNoDataDir is why a Platform without a data directory cannot hand over.
	errNoDataDir = slipway.Errorf(slipway.EINVALID, "no data directory to write the state for the next server in")
)

// holdState says whether the Platform is held. Its mutex is only ever held briefly, never
// while another lock is taken.
type holdState struct {
	mu   sync.Mutex
	held bool
	thaw chan struct{} // closed when the hold ends
}

// ListenerKey names app's main (preview false) or preview listener in Config.Inherit and in
// what Handover returns: "<app>/main" or "<app>/preview".
func ListenerKey(app string, preview bool) string {
	if preview {
		return app + "/" + listenerNames[1]
	}
	return app + "/" + listenerNames[0]
}

// parseListenerKey splits a ListenerKey into the app and the listener's index.
func parseListenerKey(key string) (app string, i int, ok bool) {
	app, name, ok := strings.Cut(key, "/")
	if !ok || !safeName(app) {
		return "", 0, false
	}
	for i, n := range listenerNames {
		if n == name {
			return app, i, true
		}
	}
	return "", 0, false
}

// Handover prepares a restart in place: it holds p (no process is started, restarted or
// stopped any more, and the state file is not written), writes the state file for the next
// server (every instance that is not being stopped, with whether it takes traffic), and
// returns a duplicate of each open listener's socket, keyed by ListenerKey. The caller
// passes them to the next server process (Config.Inherit) and closes them.
//
// p keeps serving on its own sockets until Run's context ends; Run then closes them (letting
// in-flight requests finish) and leaves every instance running for the next server to
// adopt. If the next server does not take over, Resume undoes the hold.
//
// Handover returns EINVALID when p has no DataDir (there would be no state to hand over),
// and an error when Run is not running.
func (p *Platform) Handover() (map[string]*os.File, error) {
	if p.cfg.DataDir == "" {
		return nil, fmt.Errorf("local: handover: %w", errNoDataDir)
	}
	p.mu.Lock()
	running := p.phase == phaseRunning
	apps := make([]*app, 0, len(p.apps))
	for _, a := range p.apps {
		apps = append(apps, a)
	}
	p.mu.Unlock()
	if !running {
		return nil, errors.New("local: handover: the platform is not running")
	}
	p.hold()
	if err := p.save(true); err != nil {
		p.Resume()
		return nil, fmt.Errorf("local: handover: %w", err)
	}
	files := map[string]*os.File{}
	for _, a := range apps {
		a.mu.Lock()
		for i, l := range a.listeners {
			if l.ln == nil {
				continue
			}
			f, err := ListenerFile(l.ln)
			if err != nil {
				a.mu.Unlock()
				for _, f := range files {
					_ = f.Close()
				}
				p.Resume()
				return nil, fmt.Errorf("local: handover %s: %w", ListenerKey(a.name, i == 1), err)
			}
			files[ListenerKey(a.name, i == 1)] = f
		}
		a.mu.Unlock()
	}
	p.log.Info("held for a handover", "listeners", len(files))
	return files, nil
}

// Resume ends a hold (Handover, or Config.StartHeld): supervisors start, restart and stop
// processes again, and the state file is written again. The strays are stopped first: the
// processes marked as instances of the data directory that no instance accounts for, now
// that no other server manages any (strays.go). Resuming a Platform that is not held does
// nothing.
func (p *Platform) Resume() {
	h := &p.holdState
	h.mu.Lock()
	if !h.held {
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	p.sweep()
	h.mu.Lock()
	if !h.held {
		h.mu.Unlock()
		return
	}
	h.held = false
	close(h.thaw)
	h.mu.Unlock()
	p.log.Info("hold ended")
	p.persist()
	p.mu.Lock()
	for _, a := range p.apps {
		a.poke()
	}
	p.mu.Unlock()
}

// sweep stops, in the background, the strays of a running Platform: marked processes that
// are none of its instances (nor theirs, nor its own children). It runs while the Platform
// is held, so that no process is being started meanwhile.
func (p *Platform) sweep() {
	p.mu.Lock()
	running, g := p.phase == phaseRunning, p.group
	apps := slices.Collect(maps.Values(p.apps))
	p.mu.Unlock()
	if !running || p.mark == "" {
		return
	}
	known, ids := map[int]bool{}, map[string]bool{}
	for _, a := range apps {
		a.mu.Lock()
		for _, in := range a.instances {
			if in.pid > 0 {
				known[in.pid] = true
			}
			ids[a.name+"/"+in.id] = true
		}
		a.mu.Unlock()
	}
	if ms := strays(scanMarked(p.mark), known, ids); len(ms) > 0 {
		g.Go(func() error { p.stopStrays(ms, p.cfg.StopGrace); return nil })
	}
}

// Serving returns a channel that is closed once every listener in Config.Inherit is served
// by its app or closed because no app wants it (and at once after Run restored the state
// when nothing was inherited, or when Run returns). An inherited listener is served once
// the adopted instances that took traffic at the handover are ready again, or after a
// bound of 10 s, so that the old server keeps the traffic until the new one can carry it.
func (p *Platform) Serving() <-chan struct{} { return p.serving }

// hold makes p held. It waits for a process start under way, so that once it returns no
// process is started until Resume.
func (p *Platform) hold() {
	p.starting.Lock()
	defer p.starting.Unlock()
	h := &p.holdState
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		h.held, h.thaw = true, make(chan struct{})
	}
}

// isHeld reports whether p is held.
func (p *Platform) isHeld() bool {
	h := &p.holdState
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// awaitThaw waits while p is held and reports whether the hold ended (false: ctx ended).
func (p *Platform) awaitThaw(ctx context.Context) bool {
	for {
		h := &p.holdState
		h.mu.Lock()
		held, thaw := h.held, h.thaw
		h.mu.Unlock()
		if !held {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-thaw:
		}
	}
}

// dropUnwanted closes the inherited listeners that no restored app wants at their address,
// once Run restored the state.
func (p *Platform) dropUnwanted() {
	p.inheritMu.Lock()
	keys := slices.Collect(maps.Keys(p.inherit))
	p.inheritMu.Unlock()
	for _, key := range keys {
		name, i, ok := parseListenerKey(key)
		want := ""
		if a := p.lookup(name); ok && a != nil {
			a.mu.Lock()
			if d := a.desired; d != nil {
				want = [2]string{d.Traffic.Listen, d.Traffic.Preview}[i]
			}
			a.mu.Unlock()
		}
		if want == "" {
			p.inheritMu.Lock()
			if ln := p.inherit[key]; ln != nil {
				p.log.Warn("inherited listener closed", "listener", key, "addr", ln.Addr().String(), "reason", "no app wants it")
				_ = ln.Close()
				p.release(key)
			}
			p.inheritMu.Unlock()
			continue
		}
		p.inherited(key, want) // closes it if it is bound elsewhere
	}
	p.inheritMu.Lock()
	if len(p.inherit) == 0 {
		p.servingOnce.Do(func() { close(p.serving) })
	}
	p.inheritMu.Unlock()
}

// inherited reports whether an inherited listener waits for key at address want; one
// bound elsewhere is closed.
func (p *Platform) inherited(key, want string) bool {
	p.inheritMu.Lock()
	defer p.inheritMu.Unlock()
	ln := p.inherit[key]
	if ln == nil {
		return false
	}
	if !addrMatches(want, ln.Addr()) {
		p.log.Warn("inherited listener closed", "listener", key, "addr", ln.Addr().String(), "reason", "the app now wants "+want)
		_ = ln.Close()
		p.release(key)
		return false
	}
	return true
}

// claim takes the inherited listener of key; nil when there is none.
func (p *Platform) claim(key string) net.Listener {
	p.inheritMu.Lock()
	defer p.inheritMu.Unlock()
	ln := p.inherit[key]
	if ln != nil {
		p.release(key)
	}
	return ln
}

// release forgets key's inherited listener and closes Serving after the last one. The
// caller holds inheritMu.
func (p *Platform) release(key string) {
	delete(p.inherit, key)
	if len(p.inherit) == 0 {
		p.servingOnce.Do(func() { close(p.serving) })
	}
}

// closeInherited closes the inherited listeners nothing claimed (when Run returns).
func (p *Platform) closeInherited() {
	p.inheritMu.Lock()
	defer p.inheritMu.Unlock()
	for key, ln := range p.inherit {
		_ = ln.Close()
		p.release(key)
	}
	p.servingOnce.Do(func() { close(p.serving) })
}

// warm reports whether the app's listeners may be served and its extra instances chosen:
// the readiness of every adopted instance is known (see Settled), every one that took
// traffic at a handover is ready again (or has ended), or warmTimeout passed since Run
// started. The caller holds a.mu.
func (a *app) warm() bool {
	if time.Now().After(a.p.warmBy) {
		return true
	}
	for _, in := range a.instances {
		if (in.awaited && in.adopted && !in.ready) || (in.unknown && in.adopted) {
			return false
		}
	}
	return true
}

// addrMatches reports whether a listener bound to bound serves the configured address want:
// the same port (any, for port 0) and the same IP (any unspecified one for an empty or
// unspecified host).
func addrMatches(want string, bound net.Addr) bool {
	b, ok := bound.(*net.TCPAddr)
	if !ok {
		return false
	}
	w, err := net.ResolveTCPAddr("tcp", want)
	if err != nil {
		return false
	}
	if w.Port != 0 && w.Port != b.Port {
		return false
	}
	if len(w.IP) == 0 || w.IP.IsUnspecified() {
		return len(b.IP) == 0 || b.IP.IsUnspecified()
	}
	return w.IP.Equal(b.IP)
}

// ListenerFile returns a duplicate of ln's socket to pass to a child process
// (exec.Cmd.ExtraFiles); the caller closes it. Unlike the File method of net.TCPListener it
// leaves the socket non-blocking, which matters because the socket stays shared: a blocking
// one would stall this process's own accept loop. The child turns it back into a listener
// with net.FileListener.
func ListenerFile(ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("listener %s: %T has no file descriptor", ln.Addr(), ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", ln.Addr(), err)
	}
	var nfd uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		nfd, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("listener %s: %w", ln.Addr(), err)
	}
	if errno != 0 {
		return nil, fmt.Errorf("listener %s: duplicate: %w", ln.Addr(), errno)
	}
	return os.NewFile(nfd, "listener "+ln.Addr().String()), nil
}
