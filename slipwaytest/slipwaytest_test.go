package slipwaytest_test

import (
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/slipwaytest"
)

func TestClock(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	c := slipwaytest.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want %v", got, start)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			c.Advance(time.Second)
			_ = c.Now()
		})
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("after 10 concurrent Advance(1s): Now() = %v, want %v", got, want)
	}
}

func TestRevision(t *testing.T) {
	run := slipway.RunSpec{Command: "server", Args: []string{"-port", "${PORT}"}}
	v1 := slipwaytest.Revision("web", "v1", run)
	again := slipwaytest.Revision("web", "v1", run)
	v2 := slipwaytest.Revision("web", "v2", run)
	want := slipway.RevisionSpec{Version: "v1", Run: run}.Hash()
	if v1.ID != want || v1.App != "web" || v1.Version != "v1" || v1.Spec.Run.Command != "server" {
		t.Errorf("Revision = %+v, want ID %s of app web, version v1", v1, want)
	}
	if v1.ID != again.ID {
		t.Errorf("same arguments gave IDs %s and %s", v1.ID, again.ID)
	}
	if v1.ID == v2.ID {
		t.Errorf("versions v1 and v2 share ID %s", v1.ID)
	}
}
