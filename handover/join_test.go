package handover

import (
	"errors"
	"testing"
	"time"
)

type fakePlatform struct {
	fail    error
	held    bool
	settled chan struct{}
}

func (f *fakePlatform) Handover() error {
	if f.fail != nil {
		return f.fail
	}
	f.held = true
	return nil
}
func (f *fakePlatform) Resume()                  { f.held = false }
func (f *fakePlatform) Settled() <-chan struct{} { return f.settled }

// TestJoin_HoldsAllOrNone: a failed hold resumes those already held; Settled waits for all.
func TestJoin_HoldsAllOrNone(t *testing.T) {
	a, b := &fakePlatform{settled: make(chan struct{})}, &fakePlatform{settled: make(chan struct{})}
	j := Join(func() []Platform { return []Platform{a, b} })
	if err := j.Handover(); err != nil || !a.held || !b.held {
		t.Fatalf("Handover: %v, held %v %v", err, a.held, b.held)
	}
	j.Resume()
	if a.held || b.held {
		t.Fatal("Resume left a platform held")
	}
	b.fail = errors.New("b cannot")
	if err := j.Handover(); err == nil || a.held {
		t.Fatalf("failed Handover: %v, a held %v; want the error and a resumed", err, a.held)
	}
	s := j.Settled()
	close(a.settled)
	select {
	case <-s:
		t.Fatal("settled before every platform was")
	case <-time.After(20 * time.Millisecond):
	}
	close(b.settled)
	select {
	case <-s:
	case <-time.After(5 * time.Second):
		t.Fatal("not settled once every platform was")
	}
}
