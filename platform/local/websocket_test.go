package local_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/platform/local"
	"slipway.dev/slipway/slipwaytest"
)

// wsEchoEnv, set, makes the test binary a WebSocket echo server on 127.0.0.1:$PORT (an
// instance the platform runs) instead of running the tests.
const wsEchoEnv = "SLIPWAY_TEST_WEBSOCKET_ECHO"

// serveWebSocketEcho serves slipwaytest.WebSocketEcho until SIGTERM; it returns the exit
// code.
func serveWebSocketEcho() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(slipwaytest.WebSocketEcho)}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "websocket echo:", err)
		return 1
	}
	return 0
}

func TestPlatform_WebSocketThroughTheListener(t *testing.T) {
	s := start(t, local.Config{})
	const app = "ws"
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec := slipway.RevisionSpec{Version: "v1", Run: slipway.RunSpec{Command: exe, Env: map[string]string{wsEchoEnv: "1"}}}
	rev := slipway.Revision{App: app, ID: spec.Hash(), Version: "v1", Spec: spec}
	apply(t, s, slipway.Desired{
		App: app, Traffic: slipway.Traffic{Listen: "127.0.0.1:0"},
		Revisions: []slipway.Placement{place(rev, 1)}, Split: weights(rev, 100),
	})
	until(t, s, app, "ready", readyCount(map[string]int{rev.ID: 1}))
	addr, _ := s.ListenAddrs(app)

	slipwaytest.DialWebSocketEcho(t, addr, "ws.test")
}
