// Command flags serves OFREP for one flagd-format flag file, for bench/flags/run.sh: it is
// slipway's OFREP server (package ofrep) on a plain http.Server, with nothing else on the
// request path, so the benchmark measures the OFREP adapter and the evaluator.
//
//	go run ./bench/flags -file bench/flags/testdata/flags.json -addr 127.0.0.1:18090
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"slipway.dev/slipway/flagfile"
	"slipway.dev/slipway/flags"
	"slipway.dev/slipway/ofrep"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flags:", err)
		os.Exit(1)
	}
}

func run() error {
	file := flag.String("file", "bench/flags/testdata/flags.json", "flagd-format flag file to serve")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	life := flag.Duration("life", 20*time.Minute, "exit after this long, whatever happens")
	metrics := flag.Bool("metrics", true, "count evaluations in slipway_flag_evaluations_total, as the server does")
	flag.Parse()

	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	fs, err := flagfile.Parse(*file, data)
	if err != nil {
		return err
	}
	set, err := flags.Compile(fs)
	if err != nil {
		return err
	}
	cfg := ofrep.Config{Flags: flags.NewCurrent(set), Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if *metrics {
		cfg.Metrics = prometheus.NewRegistry()
	}
	srv := ofrep.New(cfg)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	hs.RegisterOnShutdown(srv.CloseStreams)
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *life)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
