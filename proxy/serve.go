package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
	// readHeaderTimeout bounds the time a client takes to send a request head.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a client connection that sends no request for this long.
	idleTimeout = 2 * time.Minute
	// defaultGrace is Config.ShutdownGrace's default.
	defaultGrace = 30 * time.Second
)

// Serve serves the main listener on ln until ctx ends: the same stages as ServeHTTP, by a
// fast path for plain HTTP/1.x that does not go through net/http (see the package
// documentation), with anything else (HTTP/2 with prior knowledge, upgrades, Expect,
// unusual requests) handed to an http.Server on the same connection. When ctx ends, Serve
// stops accepting, closes idle connections, lets requests in progress finish for up to
// Config.ShutdownGrace, then closes what is left and returns nil. It closes ln. It returns
// an error only when accepting fails for good.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	return ServeWith(ctx, ln, func() *Proxy { return p }, false)
}

// ServePreview is Serve for the preview listener (the Preview handler's routing).
func (p *Proxy) ServePreview(ctx context.Context, ln net.Listener) error {
	return ServeWith(ctx, ln, func() *Proxy { return p }, true)
}

// ServeWith is Serve for a listener whose proxy may be replaced while it runs: current is
// called for each request (it must not return nil), and preview selects the preview
// listener's routing.
func ServeWith(ctx context.Context, ln net.Listener, current func() *Proxy, preview bool) error {
	s := newServer(ln, current, preview)
	return s.run(ctx)
}

// server is one listener served by Serve.
type server struct {
	ln       net.Listener
	current  func() *Proxy
	preview  bool
	fast     bool // false hands every connection to net/http
	handoff  *chanListener
	fallback *http.Server
	writers  sync.Pool // *bufio.Writer to clients
	readers  sync.Pool // *bufio.Reader from backends
	buffers  bufferPool

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup // connection goroutines
}

func newServer(ln net.Listener, current func() *Proxy, preview bool) *server {
	s := &server{
		ln:      ln,
		current: current,
		preview: preview,
		fast:    fastPathEnabled,
		handoff: newChanListener(ln.Addr()),
		conns:   map[*conn]struct{}{},
	}
	p := current()
	s.fallback = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.current().serve(w, r, s.preview)
		}),
		Protocols:         Protocols(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
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

// accept accepts connections until the listener is closed.
func (s *server) accept() error {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: wait and try again, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.current().log.Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.fast {
			s.handoff.deliver(nc)
			continue
		}
		c := &conn{s: s, nc: nc}
		if !s.track(c) {
			_ = nc.Close()
			return nil
		}
		go c.serve()
	}
}

// track registers c, unless the server is shutting down.
func (s *server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// shutdown stops accepting, closes idle connections, waits for requests in progress (at
// most the grace period), then closes every connection left.
func (s *server) shutdown() {
	s.mu.Lock()
	s.closing.Store(true)
	s.mu.Unlock()
	_ = s.ln.Close()
	grace := s.current().grace
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()

	fellBack := make(chan struct{})
	go func() {
		defer close(fellBack)
		if err := s.fallback.Shutdown(ctx); err != nil {
			_ = s.fallback.Close()
		}
	}()
	s.closeIdle()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	<-fellBack
}

// closeIdle wakes the connections that wait for a request: their read fails at once and,
// seeing the server closing, they close.
func (s *server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.nc.SetReadDeadline(time.Now())
		}
	}
}

func (s *server) getWriter(nc net.Conn) *bufio.Writer {
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

// deliver hands nc to the http.Server (or closes it when that has shut down).
func (l *chanListener) deliver(nc net.Conn) {
	select {
	case l.ch <- nc:
	case <-l.closed:
		_ = nc.Close()
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

// replayConn is a handed-over connection: the bytes the fast path read already come first.
type replayConn struct {
	net.Conn
	pending []byte
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
