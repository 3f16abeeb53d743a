package fastpath

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/slipwaytest"
)

// stoppable serves ln with rt until stop, which begins the stop and returns the channel
// Serve's result arrives on.
func stoppable(tb testing.TB, rt *testRouter, ln net.Listener) (stop func() <-chan error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	finished := make(chan struct{})
	go func() { err = Serve(ctx, ln, rt, rt.cfg); close(finished) }()
	tb.Cleanup(func() { cancel(); <-finished })
	return func() <-chan error {
		cancel()
		out := make(chan error, 1)
		go func() { <-finished; out <- err }()
		return out
	}
}

// oneBackend returns a router to the one backend at addr, which hands every request to
// net/http with handOff.
func oneBackend(tb testing.TB, cfg Config, handOff bool, addr string) *testRouter {
	tb.Helper()
	rt := newRouter(tb, cfg, addr)
	rt.handOff = handOff
	return rt
}

// acceptSignal is a listener that reports each connection it hands to Serve.
type acceptSignal struct {
	net.Listener
	accepted chan struct{}
}

func (l *acceptSignal) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- struct{}{}
	}
	return nc, err
}

// listen returns a listener on 127.0.0.1:0 that reports its accepts.
func listen(tb testing.TB) *acceptSignal {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return &acceptSignal{Listener: ln, accepted: make(chan struct{}, 16)}
}

func (l *acceptSignal) waitAccept(tb testing.TB) {
	tb.Helper()
	select {
	case <-l.accepted:
	case <-time.After(5 * time.Second):
		tb.Fatal("Serve did not accept the connection")
	}
}

// sharedSocket returns a second listener on ln's socket, as a restart in place hands it to
// the next server.
func sharedSocket(tb testing.TB, ln net.Listener) net.Listener {
	tb.Helper()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	shared, err := net.FileListener(f)
	if err != nil {
		tb.Fatal(err)
	}
	return shared
}

// handedConfigs are the two ways a connection is served: the fast path, and net/http
// after a hand-off (the Router hands every request over): handOff for each.
var handedConfigs = map[string]bool{"fast path": false, "handed to net/http": true}

func TestServe_StopOnASharedSocketDropsNothing(t *testing.T) {
	fastOnly(t)
	for name, handOff := range handedConfigs {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			shared := sharedSocket(t, ln)
			stopOld := stoppable(t, oneBackend(t, Config{}, handOff, startBackend(t, named("old"))), ln)
			stopNext := stoppable(t, oneBackend(t, Config{}, handOff, startBackend(t, named("next"))), shared)
			url := "http://" + ln.Addr().String() + "/"
			sharedLoad(t, url, stopOld)

			// The socket stays open in the next server.
			c := client(t)
			if body, err := fetch(c, url); err != nil || body != "next" {
				t.Errorf("after the stop: %q %v; want the next server to answer", body, err)
			}
			c.CloseIdleConnections()
			if err := <-stopNext(); err != nil {
				t.Errorf("Serve of the next server: %v", err)
			}
		})
	}
}

// sharedLoad sends requests to url from clients on new connections each time and on
// kept-alive ones, as fast as they can, stops the old server (stopOld) in the middle, and
// requires every request to be answered, by both servers between them.
func sharedLoad(t *testing.T, url string, stopOld func() <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		first      []string
		byWho      = map[string]int{}
		wg         sync.WaitGroup
	)
	for i := range 8 {
		tr := &http.Transport{DisableKeepAlives: i%2 == 0}
		c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
		wg.Go(func() {
			defer tr.CloseIdleConnections()
			for ctx.Err() == nil {
				body, err := fetch(c, url)
				mu.Lock()
				if err == nil {
					ok.Add(1)
					byWho[body]++
				} else {
					failed.Add(1)
					if len(first) < 5 {
						first = append(first, err.Error())
					}
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // load on both servers
	if err := <-stopOld(); err != nil {
		t.Errorf("Serve of the stopped server: %v, want nil", err)
	}
	time.Sleep(300 * time.Millisecond) // load on the one left
	cancel()
	wg.Wait()

	t.Logf("%d answered (%v), %d failed", ok.Load(), byWho, failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed while one of two servers on a socket stopped; first: %q", failed.Load(), first)
	}
	if byWho["old"] == 0 || byWho["next"] == 0 {
		t.Errorf("both servers should have answered: %v", byWho)
	}
}

// fetch GETs url and returns the body of a 200 answer.
func fetch(c *http.Client, url string) (string, error) {
	res, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	return string(b), nil
}

func TestServe_StopAnswersWhatArrivesOnAConnectionJustAccepted(t *testing.T) {
	fastOnly(t)
	for name, handOff := range handedConfigs {
		t.Run(name, func(t *testing.T) {
			p := oneBackend(t, Config{}, handOff, startBackend(t, named("stable")))

			t.Run("the request sent 100 ms after the stop", func(t *testing.T) {
				ln := listen(t)
				stop := stoppable(t, p, ln)
				c, br := rawConn(t, ln.Addr().String())
				ln.waitAccept(t)
				stopped := stop()
				time.Sleep(100 * time.Millisecond) // the client is slow to send
				write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				if res, body := readResponse(t, br, http.MethodGet); res.StatusCode != http.StatusOK || body != "stable" || !res.Close {
					t.Errorf("request on a connection accepted before the stop: %d %q close %v, want 200 \"stable\" and Connection: close",
						res.StatusCode, body, res.Close)
				}
				if err := <-stopped; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})

			t.Run("the rest of a head sent after the stop", func(t *testing.T) {
				ln := listen(t)
				stop := stoppable(t, p, ln)
				c, br := rawConn(t, ln.Addr().String())
				ln.waitAccept(t)
				write(t, c, "GET / HTTP/1.1\r\nHo")
				// Older than the grace of a connection that has sent nothing: only the bytes
				// already sent get the request served.
				time.Sleep(FreshGrace + 100*time.Millisecond)
				stopped := stop()
				time.Sleep(100 * time.Millisecond) // the rest of the head comes well after the stop
				write(t, c, "st: a\r\n\r\n")
				if res, body := readResponse(t, br, http.MethodGet); res.StatusCode != http.StatusOK || body != "stable" || !res.Close {
					t.Errorf("request whose head was cut by the stop: %d %q close %v, want 200 \"stable\" and Connection: close",
						res.StatusCode, body, res.Close)
				}
				if err := <-stopped; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})

			t.Run("a connection that sends nothing does not hold the stop", func(t *testing.T) {
				q := oneBackend(t, Config{ShutdownGrace: time.Minute}, handOff, startBackend(t, named("stable")))
				ln := listen(t)
				stop := stoppable(t, q, ln)
				_, br := rawConn(t, ln.Addr().String())
				ln.waitAccept(t)
				stopped := stop()
				select {
				case err := <-stopped:
					if err != nil {
						t.Errorf("Serve: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("a silent connection held the stop for its whole grace period (1 min)")
				}
				if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("the silent connection after the stop: %v, want it closed", err)
				}
			})
		})
	}
}

func TestServe_StopLetsAHandedOffRequestFinish(t *testing.T) {
	fastOnly(t)
	g, held := startGate(t, "held")
	p := oneBackend(t, Config{}, true, held)
	ln := listen(t)
	stop := stoppable(t, p, ln)
	c, br := rawConn(t, ln.Addr().String())
	write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	slipwaytest.Eventually(t, 5*time.Second, "the held request", func() bool { return g.held.Load() == 1 })
	stopped := stop()
	time.Sleep(100 * time.Millisecond) // a stop that would not wait returns meanwhile
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a handed-off request in flight", err)
	default:
	}
	g.open()
	if res, body := readResponse(t, br, http.MethodGet); body != "held" || !res.Close {
		t.Errorf("handed-off request in flight during the stop: %q close %v, want \"held\" and Connection: close", body, res.Close)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestServe_StopGivesUpAfterTheGracePeriod(t *testing.T) {
	fastOnly(t)
	for name, handOff := range handedConfigs {
		t.Run(name, func(t *testing.T) {
			g, held := startGate(t, "held")
			p := oneBackend(t, Config{ShutdownGrace: 200 * time.Millisecond}, handOff, held)
			ln := listen(t)
			stop := stoppable(t, p, ln)
			c, br := rawConn(t, ln.Addr().String())
			write(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			slipwaytest.Eventually(t, 5*time.Second, "the held request", func() bool { return g.held.Load() == 1 })
			stopped := stop()
			select {
			case err := <-stopped:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				g.open() // so that the stop at cleanup can end
				t.Fatal("Serve waited for a request that never ends")
			}
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the connection of the request cut short: %v, want it closed", err)
			}
			g.open() // the request ends: its goroutine too
		})
	}
}
