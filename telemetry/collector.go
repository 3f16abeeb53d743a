// Package telemetry exports slipway's own Prometheus series about rollouts and analysis: for
// each app of an environment, its latest rollout's phase, step and canary weight; for that
// rollout's analysis runs, how many have each verdict; and for each metric, its measurements
// by verdict and its last measured value (a sequential test's difference and evidence).
//
// The Collector reads the store when it is scraped, so it needs no hook into the engine and
// shows what the store holds, even while an engine restarts. Start reading at Collector.
package telemetry

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"slipway.dev/slipway"
)

// Reader is what the Collector reads: sqlite.Store is one.
type Reader interface {
	Apps(ctx context.Context) ([]slipway.AppState, error)
	Rollouts(ctx context.Context, app string, limit int) ([]slipway.Rollout, error)
	AnalysisRuns(ctx context.Context, rollout string) ([]slipway.AnalysisRun, error)
}

// scrapeTimeout bounds the reads of one scrape.
const scrapeTimeout = 5 * time.Second

// The series' names, for the dashboard and its test.
const (
	RolloutPhase        = "slipway_rollout_phase"
	RolloutStep         = "slipway_rollout_step"
	RolloutSteps        = "slipway_rollout_steps"
	RolloutCanaryWeight = "slipway_rollout_canary_weight"
	AnalysisRuns        = "slipway_analysis_runs"
	AnalysisMeasured    = "slipway_analysis_measurements"
	AnalysisLastValue   = "slipway_analysis_last_value"
	AnalysisEvidence    = "slipway_analysis_sequential_evidence"
	ScrapeErrors        = "slipway_telemetry_read_errors_total"
)

// Collector is a prometheus.Collector of one environment's rollouts and analysis.
type Collector struct {
	store Reader
	env   string
	log   *slog.Logger

	phase, step, steps, weight *prometheus.Desc
	runs, measured, last, evid *prometheus.Desc
	errors                     prometheus.Counter
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector of environment env's state in store; log gets read errors.
func New(store Reader, env string, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := prometheus.Labels{"environment": env}
	app := []string{"app"}
	return &Collector{store: store, env: env, log: log,
		phase: prometheus.NewDesc(RolloutPhase, "1 for the phase of the app's latest rollout, 0 for the other phases.",
			[]string{"app", "rollout", "phase"}, c),
		step: prometheus.NewDesc(RolloutStep, "Canary steps the app's latest rollout has completed (of slipway_rollout_steps).",
			app, c),
		steps: prometheus.NewDesc(RolloutSteps, "Canary steps of the app's latest rollout.", app, c),
		weight: prometheus.NewDesc(RolloutCanaryWeight, "Percent of the app's traffic its latest rollout sends to the new revision.",
			app, c),
		runs: prometheus.NewDesc(AnalysisRuns, "Analysis runs of the app's latest rollout, by kind and verdict.",
			[]string{"app", "kind", "verdict"}, c),
		measured: prometheus.NewDesc(AnalysisMeasured, "Measurements of each metric in the latest analysis run that measures it, by verdict (Error: tries that errored).",
			[]string{"app", "metric", "verdict"}, c),
		last: prometheus.NewDesc(AnalysisLastValue, "The last measured value of each metric of the app's latest rollout; for a sequential test, the canary's failure rate minus the baseline's.",
			[]string{"app", "metric"}, c),
		evid: prometheus.NewDesc(AnalysisEvidence, "A sequential test's last evidence (e-value) to fail or to pass the canary, and the level (1/alpha, 1/beta) it must reach.",
			[]string{"app", "metric", "side"}, c),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: ScrapeErrors,
			Help: "Reads of the store that failed while collecting slipway's rollout and analysis series.", ConstLabels: c}),
	}
}

// Describe sends the series' descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.phase, c.step, c.steps, c.weight, c.runs, c.measured, c.last, c.evid} {
		ch <- d
	}
	c.errors.Describe(ch)
}

// phases are the rollout phases slipway_rollout_phase has a series for.
var phases = []slipway.Phase{slipway.PhaseProgressing, slipway.PhasePaused, slipway.PhaseCompleted, slipway.PhaseAborted}

// verdicts are the verdicts the analysis series count.
var verdicts = []slipway.Verdict{slipway.VerdictRunning, slipway.VerdictSuccessful, slipway.VerdictFailed, slipway.VerdictInconclusive, slipway.VerdictTerminated}

// Collect reads every app's latest rollout and its analysis runs and sends their series. A
// read that fails is logged and counted, and its app left out of this scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	defer c.errors.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	apps, err := c.store.Apps(ctx)
	if err != nil {
		c.fail("read apps", err)
		return
	}
	for _, a := range apps {
		name := a.Spec.Name
		ros, err := c.store.Rollouts(ctx, name, 1)
		if err != nil {
			c.fail("read rollouts", err, "app", name)
			continue
		}
		if len(ros) == 0 {
			continue
		}
		r := ros[0]
		for _, p := range phases {
			ch <- prometheus.MustNewConstMetric(c.phase, prometheus.GaugeValue, bool01(r.Phase == p), name, r.ID, string(p))
		}
		ch <- prometheus.MustNewConstMetric(c.step, prometheus.GaugeValue, float64(r.Step), name)
		ch <- prometheus.MustNewConstMetric(c.steps, prometheus.GaugeValue, float64(r.Steps()), name)
		ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, float64(r.Weight), name)
		runs, err := c.store.AnalysisRuns(ctx, r.ID)
		if err != nil {
			c.fail("read analysis runs", err, "app", name, "rollout", r.ID)
			continue
		}
		c.collectRuns(ch, name, runs)
	}
}

// collectRuns sends the analysis series of one app's latest rollout's runs (oldest first).
func (c *Collector) collectRuns(ch chan<- prometheus.Metric, app string, runs []slipway.AnalysisRun) {
	type kv struct{ kind, verdict string }
	count := map[kv]int{}
	for _, k := range []slipway.AnalysisKind{slipway.AnalysisStep, slipway.AnalysisBackground, slipway.AnalysisPrePromotion, slipway.AnalysisPostPromotion} {
		for _, v := range verdicts {
			count[kv{string(k), string(v)}] = 0
		}
	}
	// The latest run that measures a metric speaks for it.
	latest := map[string]struct {
		m   slipway.Metric
		res slipway.MetricResult
	}{}
	var order []string
	for _, run := range runs {
		count[kv{string(run.Kind), string(run.Phase)}]++
		for i, res := range run.Results {
			if i >= len(run.Metrics) {
				break
			}
			if _, seen := latest[res.Name]; !seen {
				order = append(order, res.Name)
			}
			latest[res.Name] = struct {
				m   slipway.Metric
				res slipway.MetricResult
			}{run.Metrics[i], res}
		}
	}
	for k, n := range count {
		ch <- prometheus.MustNewConstMetric(c.runs, prometheus.GaugeValue, float64(n), app, k.kind, k.verdict)
	}
	for _, name := range order {
		l := latest[name]
		res := l.res
		for v, n := range map[slipway.Verdict]int{slipway.VerdictSuccessful: res.Successful, slipway.VerdictFailed: res.Failed,
			slipway.VerdictInconclusive: res.Inconclusive, slipway.VerdictError: res.Errors} {
			ch <- prometheus.MustNewConstMetric(c.measured, prometheus.GaugeValue, float64(n), app, name, string(v))
		}
		c.collectLast(ch, app, name, l.m, res)
	}
}

// collectLast sends a metric's last measured value, when it was a number (or a sequential
// test's decision), and a sequential test's evidence.
func (c *Collector) collectLast(ch chan<- prometheus.Metric, app, name string, m slipway.Metric, res slipway.MetricResult) {
	for i := len(res.Measurements) - 1; i >= 0; i-- {
		x := res.Measurements[i]
		if x.Value == "" {
			continue
		}
		if b := m.Provider.Builtin; b != nil && b.Sequential != nil {
			var v struct {
				Difference, FailEvidence, FailAt, PassEvidence, PassAt float64
			}
			if json.Unmarshal([]byte(x.Value), &v) != nil {
				return
			}
			ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, v.Difference, app, name)
			for side, e := range map[string]float64{"fail": v.FailEvidence, "pass": v.PassEvidence, "fail_at": v.FailAt, "pass_at": v.PassAt} {
				ch <- prometheus.MustNewConstMetric(c.evid, prometheus.GaugeValue, e, app, name, side)
			}
			return
		}
		if f, err := strconv.ParseFloat(x.Value, 64); err == nil && !math.IsNaN(f) {
			ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, f, app, name)
		}
		return
	}
}

func (c *Collector) fail(what string, err error, args ...any) {
	c.errors.Inc()
	c.log.Warn("telemetry read failed", append([]any{"read", what, "err", err}, args...)...)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
