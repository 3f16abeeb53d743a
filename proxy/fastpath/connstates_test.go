package fastpath

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestConnStates_Busy(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var cs ConnStates
	if cs.Busy() {
		t.Fatal("no connection: busy")
	}
	cs.Track(a, http.StateNew)
	if !cs.Busy() {
		t.Error("a connection just accepted, nothing sent yet: not busy")
	}
	cs.Track(a, http.StateActive)
	cs.Track(b, http.StateIdle)
	if !cs.Busy() {
		t.Error("a request in flight: not busy")
	}
	cs.Track(a, http.StateIdle)
	if cs.Busy() {
		t.Error("both idle: busy")
	}
	cs.Track(a, http.StateClosed)
	cs.Track(b, http.StateHijacked)
	cs.Track(a, http.StateNew)
	cs.mu.Lock()
	cs.m[a] = connState{state: http.StateNew, since: time.Now().Add(-FreshGrace)}
	n := len(cs.m)
	cs.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connections tracked after close and hijack, want 1", n)
	}
	if cs.Busy() {
		t.Error("a connection new for FreshGrace without a request: busy")
	}
}

func TestConnStates_Quiet(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var cs ConnStates
	if err := cs.Quiet(context.Background()); err != nil {
		t.Fatalf("no connection: %v", err)
	}
	cs.Track(a, http.StateActive)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := cs.Quiet(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request in flight until ctx ends: %v, want the deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- cs.Quiet(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("returned with a request in flight: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	cs.Track(a, http.StateIdle)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after the request ended")
	}
}
