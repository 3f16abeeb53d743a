// Package slipwaytest holds what every slipway package's tests share: the conformance suite
// each Platform implementation runs (TestPlatform), a fake clock (Clock), a poll for a
// condition that becomes true (Eventually), builders for test
// values (Revision), a WebSocket echo handler for proxy tests (WebSocketEcho), and a real
// Prometheus server scraping targets a test controls (StartPrometheus, prometheus.go). It is an
// ordinary package so that any package's tests can import it; no production code does.
//
// Start reading at TestPlatform (platform.go).
package slipwaytest

import (
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// Clock is a fake clock that moves only when told to. It is safe for concurrent use; pass
// its Now method wherever a component takes a clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads t until it is advanced.
func NewClock(t time.Time) *Clock {
	return &Clock{now: t}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// EventuallyPoll is how often Eventually checks its condition.
const EventuallyPoll = 2 * time.Millisecond

// Eventually waits until cond holds, checking it every EventuallyPoll, and fails the test
// (naming what it waited for) when within passes first. Tests wait with it instead of
// sleeping for a time that is usually enough.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(EventuallyPoll)
	}
}

// Revision returns a revision of app that runs run and is labelled version. Its ID is the
// hash of its spec, so two calls with the same arguments give the same revision, and two
// versions of the same run spec give different ones.
func Revision(app, version string, run slipway.RunSpec) slipway.Revision {
	spec := slipway.RevisionSpec{Version: version, Run: run}
	return slipway.Revision{App: app, ID: spec.Hash(), Version: version, Spec: spec}
}

// ContainerRevision returns a revision of app that runs container c and is labelled
// version, as Revision does for a process.
func ContainerRevision(app, version string, c slipway.ContainerSpec) slipway.Revision {
	spec := slipway.RevisionSpec{Version: version, Container: &c}
	return slipway.Revision{App: app, ID: spec.Hash(), Version: version, Spec: spec}
}
