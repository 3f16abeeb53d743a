// Command slipway runs slipway's proxy alone for the proxy benchmark (bench/proxy/run.sh): a
// proxy.Proxy with a static table (revision a at weight 90 and revision b at weight 10, one
// backend each), with per-revision metrics on a fresh Prometheus registry, served by
// Proxy.Serve (the fast path for HTTP/1.x, net/http for the rest).
//
//	slipway -listen 127.0.0.1:18090 -a 127.0.0.1:18081 -b 127.0.0.1:18082 -gomaxprocs 2
//
// -nethttp serves it by an http.Server instead (Proxy.ServeHTTP, as before Serve existed);
// -cpuprofile writes a CPU profile of the whole run (written when the command exits);
// -sticky turns on cookie stickiness. It exits after -for, or on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"slipway.dev/slipway"
	"slipway.dev/slipway/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18090", "address the proxy listens on")
	addrA := flag.String("a", "127.0.0.1:18081", "backend of revision a (weight 90)")
	addrB := flag.String("b", "127.0.0.1:18082", "backend of revision b (weight 10)")
	procs := flag.Int("gomaxprocs", 0, "GOMAXPROCS (0 keeps the runtime's default)")
	sticky := flag.Bool("sticky", false, "enable cookie stickiness")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	life := flag.Duration("for", 10*time.Minute, "exit after this long")
	nethttp := flag.Bool("nethttp", false, "serve with an http.Server and Proxy.ServeHTTP instead of Proxy.Serve")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if err := run(*listen, *addrA, *addrB, *sticky, *nethttp, *cpuprofile, *life); err != nil {
		log.Fatal(err)
	}
}

func run(listen, addrA, addrB string, sticky, nethttp bool, cpuprofile string, life time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, life)
	defer cancel()

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	px := proxy.New(proxy.Config{
		App:        "bench",
		Stickiness: &slipway.Stickiness{Enabled: sticky},
		Metrics:    proxy.NewMetrics(prometheus.NewRegistry()),
		Log:        logger,
	})
	defer px.CloseIdleConnections()
	err := px.Update(proxy.Table{
		Split: slipway.Split{Weights: []slipway.Weight{{Revision: "a", Weight: 90}, {Revision: "b", Weight: 10}}},
		Backends: map[string][]proxy.Backend{
			"a": {{ID: "a-1", Addr: addrA}},
			"b": {{ID: "b-1", Addr: addrB}},
		},
		Versions: map[string]string{"a": "v1", "b": "v2"},
	})
	if err != nil {
		return err
	}

	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if !nethttp {
		log.Printf("slipway proxy (Serve): listening on %s (a=%s 90%%, b=%s 10%%), GOMAXPROCS=%d", listen, addrA, addrB, runtime.GOMAXPROCS(0))
		return px.Serve(ctx, ln)
	}
	srv := &http.Server{
		Handler:           px,
		Protocols:         proxy.Protocols(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("slipway proxy (net/http): listening on %s (a=%s 90%%, b=%s 10%%), GOMAXPROCS=%d", listen, addrA, addrB, runtime.GOMAXPROCS(0))
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	shut, cancelShut := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShut()
	_ = srv.Shutdown(shut)
	return err
}
