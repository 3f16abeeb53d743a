package fastpath

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Listener defaults (those the local platform gives its listeners).
const (
	// readHeaderTimeout bounds the time a client takes to send a request head: from the
	// accept for its first request, from the first byte for the others (net/http's server
	// times heads so, and the local platform gives it this timeout).
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a client connection that sends no request for this long.
	idleTimeout = 2 * time.Minute
	// defaultGrace is Config.ShutdownGrace's default.
	defaultGrace = 30 * time.Second
	// abandonAfter is how long shutdown still waits for the connection goroutines once the
	// grace period is over and every connection is closed. One still waiting then waits
	// for a backend's answer; it ends when that comes, and Serve returns without it.
	abandonAfter = time.Second
)

// Config configures a listener served by Serve.
type Config struct {
	// Handler serves what the fast path hands to net/http (see Router.Route), behind an
	// http.Server that speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c). Required.
	Handler http.Handler
	// ShutdownGrace is how long Serve lets requests in progress finish after its ctx ends,
	// before it closes their connections; 0 means 30 s.
	ShutdownGrace time.Duration
	// MaxConns bounds the client connections open at once, those handed to net/http
	// included: at the bound, Serve accepts no more until one closes, and new clients wait
	// in the listen queue. 0 means no bound.
	MaxConns int
	// Log receives the listener's logs; nil discards them.
	Log *slog.Logger
}

// Serve serves ln until ctx ends, each request where rt routes it: plain HTTP/1.x by the
// fast path, which does not go through net/http (see the package documentation), and
// anything else (HTTP/2 with prior knowledge, upgrades, Expect, unusual requests, and what
// rt hands over) by cfg.Handler behind an http.Server on the same connection. It closes
// ln. It returns an error only when accepting fails for good.
//
// When ctx ends, it stops without dropping a request, even when ln's socket is shared
// with another server that goes on accepting (a restart in place): it stops accepting;
// every request already sent, in full or in part, is answered, with Connection: close; a
// connection accepted less than FreshGrace before that has sent nothing yet may still send
// its request, which is answered too; connections idle after a response are closed (the
// keep-alive race every server has: clients retry idempotent requests on them). Handed-off
// connections get the same treatment from the http.Server (keep-alives off, then
// Shutdown). Everything is bounded by cfg.ShutdownGrace, after which it closes what is
// left and returns nil.
func Serve(ctx context.Context, ln net.Listener, rt Router, cfg Config) error {
	return newServer(ln, rt, cfg).run(ctx)
}

// server is one listener served by Serve.
type server struct {
	ln       net.Listener
	router   Router
	log      *slog.Logger
	grace    time.Duration
	fast     bool // false hands every connection to net/http
	handoff  *chanListener
	fallback *http.Server
	writers  sync.Pool // *bufio.Writer to clients
	readers  sync.Pool // *bufio.Reader from backends
	buffers  BufferPool

	mu       sync.Mutex // guards conns; held by shutdown while it sets waiting connections' deadlines
	conns    map[*conn]struct{}
	slots    chan struct{} // one per open connection, up to Config.MaxConns; nil for no bound
	stop     chan struct{} // closed when shutdown begins: accept waits for a slot no more
	closing  atomic.Bool
	wg       sync.WaitGroup // connection goroutines
	accepted chan struct{}  // closed when accept returned: no connection is added after

	handed ConnStates // the http.Server's connections
}

func newServer(ln net.Listener, rt Router, cfg Config) *server {
	s := &server{
		ln:       ln,
		router:   rt,
		log:      cfg.Log,
		grace:    cfg.ShutdownGrace,
		fast:     fastPathEnabled,
		handoff:  newChanListener(ln.Addr()),
		conns:    map[*conn]struct{}{},
		stop:     make(chan struct{}),
		accepted: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.grace <= 0 {
		s.grace = defaultGrace
	}
	if cfg.MaxConns > 0 {
		s.slots = make(chan struct{}, cfg.MaxConns)
	}
	var ps http.Protocols
	ps.SetHTTP1(true)
	ps.SetUnencryptedHTTP2(true)
	s.fallback = &http.Server{
		Handler:           cfg.Handler,
		Protocols:         &ps,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState:         s.handed.Track,
	}
	return s
}

// fastPathEnabled is the switch of the fast path: off, Serve hands every connection to
// net/http.
const fastPathEnabled = true

func (s *server) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.fallback.Serve(s.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve handed-off connections: %w", err)
		}
		return nil
	})
	g.Go(s.accept)
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	return g.Wait()
}

// accept accepts connections until the listener is closed, holding one slot per open
// connection (at Config.MaxConns, it waits for one to close before it accepts again). A
// connection it accepted is served even when shutdown has begun: on a shared socket no
// other server would answer it.
func (s *server) accept() error {
	defer close(s.accepted)
	var backoff time.Duration
	for {
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
			case <-s.stop:
				return nil
			}
		}
		nc, err := s.ln.Accept()
		if err != nil {
			if s.slots != nil {
				<-s.slots
			}
			if s.closing.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: wait and try again, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		var slot *connSlot
		if s.slots != nil {
			slot = &connSlot{slots: s.slots}
		}
		if !s.fast {
			s.handOver(&replayConn{Conn: nc, slot: slot})
			continue
		}
		c := &conn{s: s, nc: nc, slot: slot, accepted: time.Now(), rc: rawConnOf(nc)}
		c.rw.rc = c.rc
		s.track(c)
		go c.serve()
	}
}

// track registers c.
func (s *server) track(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
}

func (s *server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// shutdown stops serving without dropping a request (see Serve): it stops accepting,
// wakes the connections waiting for a request (await), turns the http.Server's keep-alives
// off, and waits until every connection of the fast path has closed and no handed-off one
// serves a request or has just been handed over; then it shuts the http.Server down. All
// of it within the grace period, after which it closes every connection.
func (s *server) shutdown() {
	s.mu.Lock()
	s.closing.Store(true)
	s.mu.Unlock()
	close(s.stop)
	_ = s.ln.Close()
	s.fallback.SetKeepAlivesEnabled(false)
	s.wake()
	ctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if s.drain(ctx) {
		if err := s.fallback.Shutdown(ctx); err == nil {
			return
		}
	}
	// The grace period is over: close what is left.
	_ = s.fallback.Close() // also ends a hand-off under way (chanListener.deliver)
	<-s.accepted
	s.mu.Lock()
	left := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		left = append(left, c)
	}
	s.mu.Unlock()
	// Close blocks while the connection's goroutine is inside its RawConn read (conn_raw.go),
	// which may wait for a backend's answer: shut the socket down at once (the client sees
	// the connection closed), and close it in a goroutine of its own.
	for _, c := range left {
		if c.rc != nil {
			shutdownSocket(c.rc)
		}
		go func() { _ = c.nc.Close() }()
	}
	s.log.Warn("listener closed before its requests finished", "addr", s.ln.Addr().String(), "connections", len(left))
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(abandonAfter):
	}
}

// drain waits until accept has returned, every connection of the fast path has closed and
// no handed-off connection is busy; it reports false if ctx ended first.
func (s *server) drain(ctx context.Context) bool {
	select {
	case <-s.accepted:
	case <-ctx.Done():
		return false
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return false
	}
	return s.handed.Quiet(ctx) == nil
}

// States of a connection of the fast path (conn.state), for shutdown.
const (
	connBusy  int32 = iota // reading or serving a request, or not waiting yet
	connFresh              // waiting for its first request
	connIdle               // waiting for another request after a response
	connWoken              // was waiting when shutdown began: its read deadline was set for that
)

// await waits for the first bytes of the connection's next request (its buffer is empty)
// and reports whether they came; served says whether a response went out already.
//
// While it waits the connection is connFresh or connIdle, so that shutdown can end the
// wait by a read deadline (wakeAt): at once for an idle connection, FreshGrace after the
// accept for a fresh one. Shutdown sets that deadline (holding s.mu), or await does when it
// sees the server closing first; the compare-and-swap to connWoken decides which. Once
// bytes came, await takes the read deadline back (under s.mu, so after shutdown is done
// with it): a request sent, even in part, is served to the end.
func (c *conn) await(served bool) bool {
	st := connFresh
	if served {
		st = connIdle
	}
	c.state.Store(st)
	if c.s.closing.Load() {
		if served {
			return false
		}
		if c.state.CompareAndSwap(st, connWoken) && c.setDeadline(c.wakeAt(st)) != nil {
			return false
		}
	}
	err := c.fillMore()
	if c.state.Swap(connBusy) == connWoken && err == nil {
		c.s.mu.Lock()
		err = c.setDeadline(time.Time{}) // readHead sets readHeaderTimeout if the head is not whole yet
		c.s.mu.Unlock()
	}
	return err == nil
}

// wakeAt is the read deadline shutdown gives a connection waiting in state st.
func (c *conn) wakeAt(st int32) time.Time {
	if st == connFresh {
		return c.accepted.Add(FreshGrace)
	}
	return time.Now()
}

// wake ends the wait of the connections waiting for a request (see await).
func (s *server) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		for _, st := range [...]int32{connIdle, connFresh} {
			if c.state.CompareAndSwap(st, connWoken) {
				_ = c.nc.SetReadDeadline(c.wakeAt(st))
			}
		}
	}
}

// handOver gives nc to the http.Server, or closes it and reports false when that has shut
// down. The connection counts as just handed over from before the http.Server has it:
// shutdown must not call Shutdown in between, since a request the http.Server reads after
// Shutdown began is dropped unanswered.
func (s *server) handOver(nc net.Conn) bool {
	s.handed.Track(nc, http.StateNew)
	if !s.handoff.deliver(nc) {
		s.handed.Track(nc, http.StateClosed)
		return false
	}
	return true
}

func (s *server) getWriter(nc io.Writer) *bufio.Writer {
	if w, ok := s.writers.Get().(*bufio.Writer); ok {
		w.Reset(nc)
		return w
	}
	return bufio.NewWriterSize(nc, clientBufSize)
}

func (s *server) putWriter(w *bufio.Writer) {
	w.Reset(nil)
	s.writers.Put(w)
}

func (s *server) getReader(nc net.Conn) *bufio.Reader {
	if r, ok := s.readers.Get().(*bufio.Reader); ok {
		r.Reset(nc)
		return r
	}
	return bufio.NewReaderSize(nc, upReaderSize)
}

func (s *server) putReader(r *bufio.Reader) {
	r.Reset(nil)
	s.readers.Put(r)
}

// chanListener is the net.Listener of the internal http.Server: connections the fast path
// hands over arrive through a channel.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver hands nc to the http.Server, or closes it and reports false when that has shut
// down.
func (l *chanListener) deliver(nc net.Conn) bool {
	select {
	case l.ch <- nc:
		return true
	case <-l.closed:
		_ = nc.Close()
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.ch:
		return nc, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// connSlot is an open connection's place among Config.MaxConns, given back once, by
// whoever closes the connection (the fast path, or net/http after a hand-off).
type connSlot struct {
	once  sync.Once
	slots chan struct{}
}

// release gives the place back; it does nothing on a nil slot (no bound) or a second call.
func (s *connSlot) release() {
	if s != nil {
		s.once.Do(func() { <-s.slots })
	}
}

// replayConn is a handed-over connection: the bytes the fast path read already come first,
// and closing it gives its slot back.
type replayConn struct {
	net.Conn
	pending []byte
	slot    *connSlot
}

func (c *replayConn) Close() error {
	err := c.Conn.Close()
	c.slot.release()
	return err
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite half-closes the connection when it can (net/http uses it to close politely).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
