package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClient_IdleTimeout(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    *Reconnect
		want time.Duration
	}{
		{"without SetReconnect", nil, 3 * DefaultHeartbeat},
		{"zero", &Reconnect{}, 3 * DefaultHeartbeat},
		{"set", &Reconnect{Idle: 300 * time.Millisecond}, 300 * time.Millisecond},
		{"negative: off", &Reconnect{Idle: -1}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient("http://127.0.0.1:1", nil)
			if tt.r != nil {
				c.SetReconnect(*tt.r)
			}
			if got := c.idle(); got != tt.want {
				t.Errorf("idle timeout %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOpenStream_CloseStopsTheIdleWatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for {
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	defer srv.Close()
	c := NewClient(srv.URL, nil)
	c.SetReconnect(Reconnect{Idle: time.Hour})
	resp, err := c.openStream(context.Background(), "/", "")
	if err != nil {
		t.Fatal(err)
	}
	b, ok := resp.Body.(*idleBody)
	if !ok {
		t.Fatalf("stream body is a %T, want it under an idle watch", resp.Body)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 20)); err != nil {
		t.Fatalf("read two heartbeats: %v", err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	// An hour-long timer that Stop finds still pending was left running after the stream.
	if b.w.timer == nil || b.w.timer.Stop() {
		t.Error("the idle timer still runs after the stream was closed")
	}
	if b.w.ctx.Err() == nil {
		t.Error("the stream's connection context is still live after the stream was closed")
	}
	if b.w.silent() != nil {
		t.Errorf("a stream closed by its reader reports %v, want no silence", b.w.silent())
	}
}
