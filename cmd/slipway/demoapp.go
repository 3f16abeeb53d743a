package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/demo"
)

// newDemoAppCommand is the demo service itself: the apps `slipway demo`, the examples and
// the end-to-end tests run. It is hidden from help: people run it through an App's spec.
func newDemoAppCommand() *cobra.Command {
	var (
		port      string
		version   string
		errorRate string
		latency   time.Duration
	)
	cmd := &cobra.Command{
		Use:    "demo-app",
		Short:  "Run the demo service (an HTTP app that reports its version and can fail or be slow)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rate, err := demo.ParseErrorRate(errorRate)
			if err != nil {
				return err
			}
			if port == "" {
				return errors.New("--port (or $PORT) is required")
			}
			host, _ := os.Hostname()
			svc := &demo.Service{Version: version, Instance: fmt.Sprintf("%s:%s/%d", host, port, os.Getpid()), ErrorRate: rate, Latency: latency}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: svc, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			fmt.Fprintf(cmd.OutOrStdout(), "demo-app %s listening on %s (error rate %v, latency %v)\n", version, ln.Addr(), rate, latency)
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&port, "port", os.Getenv("PORT"), "port to listen on, on 127.0.0.1 ($PORT)")
	f.StringVar(&version, "version", envOr("DEMO_VERSION", "v1"), "version to report ($DEMO_VERSION)")
	f.StringVar(&errorRate, "error-rate", os.Getenv("DEMO_ERROR_RATE"), "share of requests to fail with 500: 0.2 or 20% ($DEMO_ERROR_RATE)")
	f.DurationVar(&latency, "latency", 0, "latency added to every answer")
	return cmd
}
