package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/analysis/stats"
)

// maxValueLen caps the measured value kept with a measurement.
const maxValueLen = 4 << 10

// maxValueInMessage caps the value quoted in a metric's message.
const maxValueInMessage = 200

// ErrorRetryDelay is how long a metric without an interval waits after a measurement error
// before it measures again (a metric with one waits its interval): a provider that fails at
// once is never called in a hot loop, and the default consecutive error limit of 4 gives a
// failing source about 20 seconds to come back before the metric is inconclusive.
const ErrorRetryDelay = 5 * time.Second

// SampleRetryDelay is how long a metric waiting for its minimum sample (its provider answered
// slipway.ErrInsufficientData) waits between checks, or its interval when that is shorter.
// The builtin provider's windows move by whole seconds, so checking more often would mostly
// see the same sample; each check of a stored run is one write.
const SampleRetryDelay = 2 * time.Second

// Record judges one measurement of metric i (value and err as the provider returned them) and
// updates the metric's and the run's verdicts; FinishedAt is set when the run ends. A
// provider error, or a condition that cannot be evaluated, is an Error: it never counts
// toward the metric's count, and past the consecutive error limit the metric is Inconclusive.
// slipway.ErrInsufficientData (too small a sample yet) is no measurement at all: the metric
// waits for its sample (MetricResult.Waiting) up to its sample timeout, after which the check
// counts as no data. A measurement of a metric or run that has already ended is ignored. It
// is pure.
//
// Record compiles the conditions it needs on each call; Runner keeps them compiled for the
// whole run.
func Record(run *slipway.AnalysisRun, i int, value any, err error, started, finished time.Time) {
	record(run, i, value, err, started, finished, &threshold{})
}

func record(run *slipway.AnalysisRun, i int, value any, err error, started, finished time.Time, j judge) {
	if run.Phase.Terminal() || i < 0 || i >= len(run.Results) || i >= len(run.Metrics) {
		return
	}
	res := &run.Results[i]
	if res.Phase.Terminal() {
		return
	}
	m := run.Metrics[i]
	if errors.Is(err, slipway.ErrInsufficientData) {
		if waitForSample(res, m, err, started, finished) {
			noteWaiting(run)
			return
		}
		what := "no minimum sample"
		if sequential(m) {
			what = "no decision of the sequential test"
		}
		err = fmt.Errorf("%s within sampleTimeout %s: %w", what, slipway.Duration(sampleTimeout(m)), err)
	}
	res.Waiting = nil
	ms := judgeMeasurement(m, value, err, j)
	ms.StartedAt, ms.FinishedAt = started, finished

	// An error is no measurement: it counts toward the consecutive error limit only, never
	// toward count.
	switch ms.Phase {
	case slipway.VerdictSuccessful:
		res.Count++
		res.Successful++
		res.ConsecutiveError = 0
	case slipway.VerdictFailed:
		res.Count++
		res.Failed++
		res.ConsecutiveError = 0
	case slipway.VerdictInconclusive:
		res.Count++
		res.Inconclusive++
		res.ConsecutiveError = 0
	case slipway.VerdictError, slipway.VerdictRunning, slipway.VerdictTerminated:
		res.Errors++
		res.ConsecutiveError++
	}
	res.Measurements = append(res.Measurements, ms)
	if n := len(res.Measurements); n > slipway.MaxMeasurementsKept {
		res.Measurements = slices.Clone(res.Measurements[n-slipway.MaxMeasurementsKept:])
	}
	res.Phase, res.Message = metricVerdict(m, *res)
	settle(run, finished)
	noteWaiting(run)
}

// waitForSample notes a check that found too small a sample (err) on the metric's wait,
// starting the wait when it is the first. It reports whether the metric waits on; once its
// sample timeout has passed since the wait began it does not, and the check counts as no
// data.
func waitForSample(res *slipway.MetricResult, m slipway.Metric, err error, started, finished time.Time) bool {
	w := res.Waiting
	if w == nil {
		w = &slipway.SampleWait{Since: started}
		res.Waiting = w
	}
	w.Checks++
	w.CheckedAt = finished
	w.Message = err.Error()
	return finished.Sub(w.Since) < sampleTimeout(m)
}

// sampleTimeout is how long m waits for a minimum sample: its sampleTimeout, or
// slipway.DefaultSampleTimeout.
func sampleTimeout(m slipway.Metric) time.Duration {
	if m.SampleTimeout > 0 {
		return m.SampleTimeout.D()
	}
	return slipway.DefaultSampleTimeout.D()
}

// noteWaiting names, in a running run's message, the first metric waiting for its minimum
// sample, so that a status tells why the run has not moved; the message is empty when none
// waits. An ended run's message is left alone.
func noteWaiting(run *slipway.AnalysisRun) {
	if run.Phase.Terminal() {
		return
	}
	run.Message = ""
	for i, res := range run.Results {
		if w := res.Waiting; w != nil && !res.Phase.Terminal() {
			what := "a minimum sample"
			if i < len(run.Metrics) && sequential(run.Metrics[i]) {
				what = "its sequential test to decide"
			}
			run.Message = fmt.Sprintf("metric %s waits for %s: %s", res.Name, what, w.Message)
			return
		}
	}
}

// judgeMeasurement turns what the provider returned into a measurement: a provider error is
// an Error, no data (or too small a sample after the wait for one) counts by the metric's
// noData policy (never as a success), and a value is judged.
func judgeMeasurement(m slipway.Metric, value any, err error, j judge) slipway.Measurement {
	switch {
	case errors.Is(err, slipway.ErrNoData), errors.Is(err, slipway.ErrInsufficientData):
		phase, class := slipway.VerdictInconclusive, stats.ClassNoData
		if m.NoData == slipway.NoDataFailure {
			phase, class = slipway.VerdictFailed, stats.ClassHigh
		}
		return slipway.Measurement{Phase: phase, Message: err.Error(), Class: string(class)}
	case err != nil:
		return slipway.Measurement{Phase: slipway.VerdictError, Message: err.Error()}
	}
	judged := j
	if sequential(m) {
		judged = decision{}
	}
	if compared(m) {
		judged = comparison{}
	}
	phase, msg := judged.judge(m, value)
	return slipway.Measurement{Phase: phase, Value: formatValue(m, value), Message: msg, Class: measuredClass(m, phase, value)}
}

// measuredClass is how a scored run weighs a measurement: a comparison's own class, Pass
// for a success, High for a failure (a failed threshold, job or sequential test: the canary
// is worse), NoData for an inconclusive one, and none for an error.
func measuredClass(m slipway.Metric, phase slipway.Verdict, value any) string {
	switch phase {
	case slipway.VerdictSuccessful:
		return string(stats.ClassPass)
	case slipway.VerdictFailed:
		if v, ok := value.(map[string]any); ok && compared(m) && v["class"] == string(stats.ClassLow) {
			return string(stats.ClassLow)
		}
		return string(stats.ClassHigh)
	case slipway.VerdictInconclusive:
		return string(stats.ClassNoData)
	case slipway.VerdictRunning, slipway.VerdictError, slipway.VerdictTerminated:
	}
	return ""
}

// formatValue writes a value as JSON, or a job's output as is.
func formatValue(m slipway.Metric, value any) string {
	var s string
	obj, _ := value.(map[string]any)
	if out, ok := obj["output"].(string); ok && m.Provider.Job != nil {
		s = out
	} else if b, err := json.Marshal(value); err == nil {
		s = string(b)
	} else {
		s = fmt.Sprint(value)
	}
	return truncate(s, maxValueLen)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// measurementCount is how many measurements (errors not counted) a metric takes in all; 0
// means until the run is terminated.
func measurementCount(m slipway.Metric) int {
	switch {
	case m.Count > 0:
		return m.Count
	case m.Interval == 0:
		return 1
	}
	return 0
}

// metricVerdict applies the limits to a metric's counters: Failed past failureLimit,
// Inconclusive past inconclusiveLimit or past the consecutive error limit; once count
// measurements are taken, Successful when at least one of them succeeded and Inconclusive
// when none did; Running otherwise.
func metricVerdict(m slipway.Metric, res slipway.MetricResult) (slipway.Verdict, string) {
	last := describeLast(m, res)
	switch {
	case res.Failed > m.FailureLimit:
		return slipway.VerdictFailed, fmt.Sprintf("%s exceed%s failureLimit %d; %s",
			plural(res.Failed, "failed measurement"), verbS(res.Failed), m.FailureLimit, last)
	case res.Inconclusive > m.InconclusiveLimit:
		return slipway.VerdictInconclusive, fmt.Sprintf("%s exceed%s inconclusiveLimit %d; %s",
			plural(res.Inconclusive, "inconclusive measurement"), verbS(res.Inconclusive), m.InconclusiveLimit, last)
	case res.ConsecutiveError > m.ErrorLimit():
		msg := ""
		if n := len(res.Measurements); n > 0 {
			msg = res.Measurements[n-1].Message
		}
		return slipway.VerdictInconclusive, fmt.Sprintf("%s exceed%s consecutiveErrorLimit %d; last error: %s",
			plural(res.ConsecutiveError, "consecutive error"), verbS(res.ConsecutiveError), m.ErrorLimit(), msg)
	}
	n := measurementCount(m)
	if n == 0 || res.Count < n {
		return slipway.VerdictRunning, ""
	}
	tally := fmt.Sprintf("%d failed, %d inconclusive, %s; %s", res.Failed, res.Inconclusive, plural(res.Errors, "error"), last)
	if res.Successful == 0 {
		// Measured, but nothing ever passed: inconclusive and failed results within their
		// limits are no evidence of health.
		return slipway.VerdictInconclusive, fmt.Sprintf("%s, none successful (%s)", plural(res.Count, "measurement"), tally)
	}
	return slipway.VerdictSuccessful, fmt.Sprintf("%s: %d successful, %s", plural(res.Count, "measurement"), res.Successful, tally)
}

// describeLast names the last measurement for a metric's message: its value, or for a job and
// for a measurement without a value, its message.
func describeLast(m slipway.Metric, res slipway.MetricResult) string {
	n := len(res.Measurements)
	if n == 0 {
		return "no measurement"
	}
	last := res.Measurements[n-1]
	if last.Value == "" || m.Provider.Job != nil || sequential(m) || compared(m) {
		return "last: " + last.Message
	}
	// A number reads better in a reason with four significant digits (0.2245, not
	// 0.22448979591836735); the measurement keeps the exact value.
	if f, err := strconv.ParseFloat(last.Value, 64); err == nil {
		return "last value " + strconv.FormatFloat(f, 'g', 4, 64)
	}
	return "last value " + truncate(last.Value, maxValueInMessage)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// verbS makes "exceed" agree with its subject.
func verbS(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

// settle decides the run: it ends Failed as soon as a metric that is not a dry run fails;
// Inconclusive as soon as one is inconclusive and every metric still running measures until
// the run is terminated (background metrics, which would never let it end); and otherwise
// once every metric has ended, with the worst verdict of its metrics that are not dry runs.
// Metrics still running when the run ends are Terminated.
func settle(run *slipway.AnalysisRun, now time.Time) {
	if run.Scoring != nil {
		settleScored(run, now)
		return
	}
	worst, worstIdx := slipway.VerdictSuccessful, -1
	failed, allEnded, boundedRunning := false, true, false
	for i, res := range run.Results {
		if !res.Phase.Terminal() {
			allEnded = false
			if i < len(run.Metrics) && measurementCount(run.Metrics[i]) > 0 {
				boundedRunning = true
			}
			continue
		}
		if res.DryRun {
			continue
		}
		if res.Phase == slipway.VerdictFailed && !failed {
			failed, worst, worstIdx = true, res.Phase, i
		}
		if !failed && res.Phase.Rank() > worst.Rank() {
			worst, worstIdx = res.Phase, i
		}
	}
	inconclusive := worst == slipway.VerdictInconclusive && !boundedRunning
	if !failed && !allEnded && !inconclusive {
		return
	}
	msg := runSuccessMessage(*run)
	if worstIdx >= 0 {
		res := run.Results[worstIdx]
		msg = fmt.Sprintf("metric %s: %s", res.Name, res.Message)
	}
	end(run, worst, msg, now)
}

// end ends run with phase and message; its metrics still running end Terminated.
func end(run *slipway.AnalysisRun, phase slipway.Verdict, msg string, now time.Time) {
	run.Phase, run.Message = phase, msg
	for i := range run.Results {
		if res := &run.Results[i]; !res.Phase.Terminal() {
			res.Phase = slipway.VerdictTerminated
			res.Message = "run ended: " + run.Message
			res.Waiting = nil
		}
	}
	t := now
	run.FinishedAt = &t
}

// runSuccessMessage says how many metrics passed, and names a dry-run metric that did not.
func runSuccessMessage(run slipway.AnalysisRun) string {
	n := 0
	var note string
	for _, res := range run.Results {
		if res.DryRun {
			if note == "" && res.Phase != slipway.VerdictSuccessful {
				note = fmt.Sprintf("; dry-run metric %s %s: %s", res.Name, res.Phase, res.Message)
			}
			continue
		}
		n++
	}
	return fmt.Sprintf("%s successful%s", plural(n, "metric"), note)
}

// Due returns the metric to measure next and when: the first measurement of a metric at the
// run's start plus its initialDelay, each later one an interval after the previous one
// finished, a try after an error an interval (ErrorRetryDelay without one) after it, and a
// check while the metric waits for its minimum sample SampleRetryDelay (or its interval, if
// shorter) after the last check. ok is false when nothing is left to measure.
func Due(run slipway.AnalysisRun) (i int, at time.Time, ok bool) {
	if run.Phase.Terminal() {
		return 0, time.Time{}, false
	}
	i = -1
	for k, m := range run.Metrics {
		if k >= len(run.Results) || run.Results[k].Phase != slipway.VerdictRunning {
			continue
		}
		next := nextAt(run.StartedAt, m, run.Results[k])
		if i < 0 || next.Before(at) {
			i, at = k, next
		}
	}
	if i < 0 {
		return 0, time.Time{}, false
	}
	return i, at, true
}

func nextAt(start time.Time, m slipway.Metric, res slipway.MetricResult) time.Time {
	if w := res.Waiting; w != nil {
		return w.CheckedAt.Add(sampleRetryDelay(m))
	}
	n := len(res.Measurements)
	if n == 0 {
		return start.Add(m.InitialDelay.D())
	}
	last := res.Measurements[n-1]
	if last.Phase == slipway.VerdictError {
		return last.FinishedAt.Add(errorRetryDelay(m))
	}
	return last.FinishedAt.Add(m.Interval.D())
}

// sampleRetryDelay is how long a metric waiting for its minimum sample waits between checks:
// SampleRetryDelay, or its interval when that is shorter.
func sampleRetryDelay(m slipway.Metric) time.Duration {
	if d := m.Interval.D(); d > 0 {
		return min(d, SampleRetryDelay)
	}
	return SampleRetryDelay
}

// errorRetryDelay is how long a metric waits after a measurement error: its interval, or
// ErrorRetryDelay when it has none.
func errorRetryDelay(m slipway.Metric) time.Duration {
	if d := m.Interval.D(); d > 0 {
		return d
	}
	return ErrorRetryDelay
}

// Terminate ends a Running run as Terminated with reason: a background run at the end of its
// rollout, or a step run the operator skipped. Its running metrics end Terminated too. A run
// that has already ended is left as is.
func Terminate(run *slipway.AnalysisRun, reason string, now time.Time) {
	if run.Phase.Terminal() {
		return
	}
	for i := range run.Results {
		if res := &run.Results[i]; !res.Phase.Terminal() {
			res.Phase = slipway.VerdictTerminated
			res.Message = reason
			res.Waiting = nil
		}
	}
	run.Phase = slipway.VerdictTerminated
	run.Message = reason
	t := now
	run.FinishedAt = &t
}
