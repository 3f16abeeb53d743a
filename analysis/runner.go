package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"slipway.dev/slipway"
)

// DefaultMeasureTimeout bounds one measurement when its provider spec sets no timeout.
const DefaultMeasureTimeout = 30 * time.Second

// maxConflictRetries bounds how often one measurement is recorded again on a fresher copy of
// its run after a version conflict.
const maxConflictRetries = 10

// Config is what a Runner needs.
type Config struct {
	// Store reads the run and commits its measurements.
	Store slipway.Store
	// Providers measure, by ProviderSpec.Kind(): "web", "job", "builtin", "prometheus" (a kind with no
	// provider here is measured as an error).
	Providers map[string]slipway.Provider
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log receives the runner's logs; discarded when nil.
	Log *slog.Logger
}

// Runner takes the measurements of analysis runs and commits them to the store.
type Runner struct {
	store     slipway.Store
	providers map[string]slipway.Provider
	now       func() time.Time
	log       *slog.Logger
}

// NewRunner returns a Runner. It starts nothing.
func NewRunner(cfg Config) *Runner {
	r := &Runner{store: cfg.Store, providers: cfg.Providers, now: cfg.Now, log: cfg.Log}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Execute measures run runID until it ends or ctx is done. It loads the run from the store,
// so that after a restart it resumes where the stored measurements left off; waits until the
// next measurement is Due; measures with the metric's provider (bounded by the provider
// spec's timeout, DefaultMeasureTimeout when unset); Records; and commits the run with an
// analysis.measurement event (and analysis.finished when the run ends) in one Commit. A
// check that found too small a sample is committed too (the wait is part of the run), with
// an analysis.waiting event when it begins the wait.
//
// On ECONFLICT it reloads the run: when the run has ended meanwhile (the engine terminated
// it) Execute returns nil, otherwise it records the same measurement on the fresh copy.
// After each commit it calls changed, when not nil; changed must not block. Execute returns
// nil when the run has ended and ctx.Err() when ctx is done.
func (r *Runner) Execute(ctx context.Context, runID string, changed func()) error {
	log := r.log.With("run", runID)
	j := &threshold{}
	for {
		run, err := r.store.AnalysisRun(ctx, runID)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("load analysis run %s: %w", runID, err)
		}
		i, at, ok := Due(run)
		if !ok {
			return nil
		}
		if wait := at.Sub(r.now()); wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			// Read the run again: the engine may have ended it while we waited.
			continue
		}
		m := run.Metrics[i]
		started := r.now()
		value, merr := r.measure(ctx, m)
		finished := r.now()
		if ctx.Err() != nil {
			// The measurement was cut short by shutdown: it is taken again on resume.
			return ctx.Err()
		}
		log.Debug("measured", "metric", m.Name, "error", merr)
		ended, err := r.commit(ctx, log, run, i, value, merr, started, finished, j)
		if err != nil {
			return err
		}
		if changed != nil {
			changed()
		}
		if ended {
			return nil
		}
	}
}

var _ slipway.Provider = (*Runner)(nil)

// Measure takes one measurement of m with the provider of its kind, bounded like Execute's
// measurements. It serves runs kept outside the store (flag ramps).
func (r *Runner) Measure(ctx context.Context, m slipway.Metric) (any, error) {
	return r.measure(ctx, m)
}

// measure takes one measurement of m with its provider.
func (r *Runner) measure(ctx context.Context, m slipway.Metric) (any, error) {
	kind := m.Provider.Kind()
	p, ok := r.providers[kind]
	if !ok {
		return nil, slipway.Errorf(slipway.EINVALID, "no %q metric provider is configured", kind)
	}
	ctx, cancel := context.WithTimeout(ctx, measureTimeout(m))
	defer cancel()
	return p.Measure(ctx, m)
}

// measureTimeout is the provider spec's timeout, or DefaultMeasureTimeout.
func measureTimeout(m slipway.Metric) time.Duration {
	var d slipway.Duration
	switch {
	case m.Provider.Web != nil:
		d = m.Provider.Web.Timeout
	case m.Provider.Job != nil:
		d = m.Provider.Job.Timeout
	case m.Provider.Prometheus != nil:
		d = m.Provider.Prometheus.Timeout
	}
	if d > 0 {
		return d.D()
	}
	return DefaultMeasureTimeout
}

// commit records the measurement on run and commits it; on a version conflict it records it
// again on a fresh copy. ended reports that the run has ended (by this measurement, or by
// someone else meanwhile).
func (r *Runner) commit(ctx context.Context, log *slog.Logger, run slipway.AnalysisRun, i int, value any, merr error, started, finished time.Time, j judge) (ended bool, err error) {
	for attempt := 0; ; attempt++ {
		record(&run, i, value, merr, started, finished, j)
		c := &slipway.Change{Runs: []slipway.AnalysisRun{run}, Events: events(run, i, finished)}
		err := r.store.Commit(ctx, c)
		if err == nil {
			if run.Phase.Terminal() {
				log.Info("analysis finished", "phase", run.Phase, "message", run.Message)
			}
			return run.Phase.Terminal(), nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if slipway.ErrorCode(err) != slipway.ECONFLICT || attempt >= maxConflictRetries {
			return false, fmt.Errorf("commit measurement of run %s: %w", run.ID, err)
		}
		id := run.ID
		run, err = r.store.AnalysisRun(ctx, id)
		if err != nil {
			return false, fmt.Errorf("reload analysis run %s: %w", id, err)
		}
		if run.Phase.Terminal() {
			log.Info("analysis ended elsewhere", "phase", run.Phase)
			return true, nil
		}
		if i >= len(run.Results) || run.Results[i].Phase.Terminal() {
			// The metric has ended meanwhile: this measurement is no longer wanted.
			return false, nil
		}
	}
}

// measurementData is the Data of an analysis.measurement event.
type measurementData struct {
	Run         string              `json:"run"`
	Metric      string              `json:"metric"`
	DryRun      bool                `json:"dryRun,omitempty"`
	Measurement slipway.Measurement `json:"measurement"`
	MetricPhase slipway.Verdict     `json:"metricPhase"`
}

// finishedData is the Data of an analysis.finished event.
type finishedData struct {
	Run   string          `json:"run"`
	Kind  string          `json:"kind"`
	Phase slipway.Verdict `json:"phase"`
}

// waitingData is the Data of an analysis.waiting event.
type waitingData struct {
	Run     string             `json:"run"`
	Metric  string             `json:"metric"`
	DryRun  bool               `json:"dryRun,omitempty"`
	Waiting slipway.SampleWait `json:"waiting"`
}

// events returns the events of metric i's last measurement, and of the run's end. A check
// that found too small a sample is no measurement: the first of a wait is an
// analysis.waiting event, the others none.
func events(run slipway.AnalysisRun, i int, at time.Time) []slipway.Event {
	res := run.Results[i]
	if w := res.Waiting; w != nil {
		if w.Checks > 1 {
			return nil
		}
		data, _ := json.Marshal(waitingData{Run: run.ID, Metric: res.Name, DryRun: res.DryRun, Waiting: *w})
		return []slipway.Event{{
			Time: at, App: run.App, Rollout: run.Rollout, Kind: slipway.EventAnalysisWaiting,
			Actor:   slipway.ActorAnalysis,
			Message: fmt.Sprintf("metric %s waits for a minimum sample", res.Name),
			Reason:  truncate(w.Message, maxValueInMessage),
			Data:    data,
		}}
	}
	var ms slipway.Measurement
	if n := len(res.Measurements); n > 0 {
		ms = res.Measurements[n-1]
	}
	msg := fmt.Sprintf("metric %s measured %s", res.Name, ms.Phase)
	if ms.Value != "" && run.Metrics[i].Provider.Job == nil {
		msg += ": " + truncate(ms.Value, maxValueInMessage)
	} else if ms.Message != "" {
		msg += ": " + truncate(ms.Message, maxValueInMessage)
	}
	data, _ := json.Marshal(measurementData{
		Run: run.ID, Metric: res.Name, DryRun: res.DryRun, Measurement: ms, MetricPhase: res.Phase,
	})
	evs := []slipway.Event{{
		Time: at, App: run.App, Rollout: run.Rollout, Kind: slipway.EventMeasurement,
		Actor: slipway.ActorAnalysis, Message: msg, Data: data,
	}}
	if run.Phase.Terminal() {
		data, _ := json.Marshal(finishedData{Run: run.ID, Kind: string(run.Kind), Phase: run.Phase})
		evs = append(evs, slipway.Event{
			Time: at, App: run.App, Rollout: run.Rollout, Kind: slipway.EventAnalysisFinished,
			Actor:   slipway.ActorAnalysis,
			Message: fmt.Sprintf("analysis %s %s", run.ID, run.Phase),
			Reason:  run.Message,
			Data:    data,
		})
	}
	return evs
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
