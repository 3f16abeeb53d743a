package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway"
)

// t0 is the fixtures' base time: UTC with nanoseconds, so that exact round trips show.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// openTest opens a store in a new file under tb.TempDir and closes it at cleanup.
func openTest(tb testing.TB) *Store {
	tb.Helper()
	return openAt(tb, filepath.Join(tb.TempDir(), "slipway.db"), newClock(t0).Now)
}

// openAt opens the store at path and closes it at cleanup.
func openAt(tb testing.TB, path string, now func() time.Time) *Store {
	tb.Helper()
	s, err := Open(path, now)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// commit commits c and fails the test on error.
func commit(tb testing.TB, s *Store, c *slipway.Change) {
	tb.Helper()
	if err := s.Commit(context.Background(), c); err != nil {
		tb.Fatalf("Commit: %v", err)
	}
}

// wantCode fails unless err carries code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := slipway.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func ptr[T any](v T) *T { return &v }

// testApp returns an app with most fields set.
func testApp(name string) slipway.AppState {
	return slipway.AppState{
		Spec: slipway.App{
			Name:     name,
			Replicas: 3,
			Version:  "v1",
			Run: slipway.RunSpec{
				Command: "/bin/server",
				Args:    []string{"--port", "${PORT}"},
				Env:     map[string]string{"MODE": "prod"},
				Dir:     "/srv",
			},
			Health: slipway.Health{
				Readiness: &slipway.Probe{
					HTTP:             &slipway.HTTPProbe{Path: "/healthz"},
					Period:           slipway.Duration(2 * time.Second),
					SuccessThreshold: 1,
				},
				Liveness: &slipway.Probe{TCP: &slipway.TCPProbe{}, FailureThreshold: 3},
			},
			Traffic: slipway.Traffic{
				Listen:     "127.0.0.1:8080",
				Stickiness: &slipway.Stickiness{Enabled: true, Header: "X-User"},
			},
			Strategy: slipway.Strategy{Canary: &slipway.CanaryStrategy{
				Steps: []slipway.Step{
					{SetWeight: ptr(20)},
					{Pause: &slipway.PauseStep{Duration: slipway.Duration(time.Minute)}},
					{Analysis: &slipway.AnalysisRef{Templates: []string{"errors"}, Args: []slipway.Arg{{Name: "svc", Value: name}}}},
				},
			}},
			Analysis: &slipway.BackgroundAnalysis{AnalysisRef: slipway.AnalysisRef{Templates: []string{"latency"}}, StartingStep: 1},
		},
		Stable:    "",
		CreatedAt: t0,
		UpdatedAt: t0.Add(time.Second),
	}
}

// testRevision returns revision number n of app.
func testRevision(app string, n int) slipway.Revision {
	spec := slipway.RevisionSpec{
		Version: fmt.Sprintf("v%d", n),
		Run:     slipway.RunSpec{Command: "/bin/server", Args: []string{fmt.Sprint(n)}},
	}
	return slipway.Revision{
		App: app, ID: spec.Hash(), Number: n, Version: spec.Version, Spec: spec,
		CreatedAt: t0.Add(time.Duration(n) * time.Minute),
	}
}

// testRollout returns a progressing rollout of app from one revision to another.
func testRollout(id, app string, number int, from, to string) slipway.Rollout {
	return slipway.Rollout{
		ID: id, App: app, Number: number,
		From: from, FromVersion: "v1", To: to, ToVersion: "v2",
		Strategy: slipway.StrategyCanary,
		Spec: slipway.Strategy{Canary: &slipway.CanaryStrategy{
			Steps: []slipway.Step{{SetWeight: ptr(50)}, {SetCanaryScale: &slipway.CanaryScale{Replicas: ptr(2)}}},
		}},
		Analysis:       &slipway.BackgroundAnalysis{AnalysisRef: slipway.AnalysisRef{Templates: []string{"errors"}}},
		Phase:          slipway.PhaseProgressing,
		Attempt:        1,
		RunSeq:         2,
		Step:           1,
		StepStartedAt:  t0.Add(2 * time.Second),
		Weight:         50,
		CanaryScale:    &slipway.CanaryScale{Weight: ptr(10)},
		HeaderRoute:    &slipway.HeaderRoute{Name: "beta", Match: []slipway.HeaderMatch{{Header: "X-Beta", Exact: "1"}}},
		NewReplicas:    2,
		OldReplicas:    3,
		LastProgressAt: t0.Add(3 * time.Second),
		PreviewReadyAt: ptr(t0.Add(4 * time.Second)),
		StepRun:        id + "-2",
		BackgroundRun:  id + "-1",
		CreatedAt:      t0,
		UpdatedAt:      t0.Add(5 * time.Second),
	}
}

// testRun returns a running analysis run of a rollout with one measurement.
func testRun(id, app, rollout string, started time.Time) slipway.AnalysisRun {
	return slipway.AnalysisRun{
		ID: id, App: app, Rollout: rollout, Kind: slipway.AnalysisStep, Step: 2,
		Templates: []string{"errors"},
		Metrics: []slipway.Metric{{
			Name:                  "error-rate",
			Provider:              slipway.ProviderSpec{Web: &slipway.WebMetric{URL: "http://127.0.0.1/metrics", Headers: map[string]string{"A": "b"}}},
			Interval:              slipway.Duration(10 * time.Second),
			Count:                 5,
			SuccessCondition:      "result < 0.01",
			ConsecutiveErrorLimit: ptr(2),
			NoData:                slipway.NoDataInconclusive,
		}},
		Results: []slipway.MetricResult{{
			Name: "error-rate", Phase: slipway.VerdictRunning, Count: 1, Successful: 1,
			Measurements: []slipway.Measurement{{
				Phase: slipway.VerdictSuccessful, Value: "0.001",
				StartedAt: started, FinishedAt: started.Add(time.Millisecond),
			}},
		}},
		Phase:     slipway.VerdictRunning,
		StartedAt: started,
	}
}

// testEvent returns an event about app (and rollout, when not "").
func testEvent(app, rollout, msg string) slipway.Event {
	return slipway.Event{
		Time: t0.Add(time.Hour), App: app, Rollout: rollout,
		Kind: slipway.EventRolloutStep, Actor: slipway.ActorEngine,
		Message: msg, Reason: "because",
		Data: json.RawMessage(`{"step":1}`),
	}
}
