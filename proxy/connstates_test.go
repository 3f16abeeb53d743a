package proxy

import (
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
