package slipway

import (
	"context"
	"time"
)

// AnalysisTemplate is a named set of metrics to measure while a rollout runs.
type AnalysisTemplate struct {
	Name    string        `json:"name"`
	Args    []TemplateArg `json:"args,omitempty"`
	Metrics []Metric      `json:"metrics"`
	// Scoring, when set, judges a run of the template by a 0-100 score of its metrics
	// (Kayenta's model) instead of failing it at its first failed metric.
	Scoring *Scoring `json:"scoring,omitempty"`
}

// Scoring judges an analysis run by a score: each metric is classified Pass, High, Low or
// NoData from its latest measurement; a group scores the weighted share of its metrics that
// pass, and the run the groups' weighted mean, from 0 to 100. While the run measures, a score
// at or below Marginal, or a critical metric High or Low, fails it at once; when every metric
// has ended, a score that reaches Pass (with no critical metric lacking data) passes it, one
// under Marginal fails it, and one between is inconclusive: the rollout pauses for a person.
type Scoring struct {
	Marginal float64 `json:"marginal"`
	Pass     float64 `json:"pass"`
	// Groups weighs the metrics' groups against each other (relative weights). Empty: every
	// group weighs the same; otherwise it must list every group its metrics name.
	Groups map[string]float64 `json:"groups,omitempty"`
}

// RunScore is a scored run's latest scorecard.
type RunScore struct {
	Score float64 `json:"score"`
	// Outcome is Pass, Marginal or Fail as the thresholds read the score now; Final is set
	// once every metric has ended.
	Outcome string `json:"outcome"`
	Final   bool   `json:"final,omitempty"`
	// Reason says in words why.
	Reason string       `json:"reason"`
	Groups []GroupScore `json:"groups"`
	// Metrics are the classes the score weighed, by metric name.
	Metrics map[string]string `json:"metrics"`
}

// GroupScore is one group's part of a RunScore.
type GroupScore struct {
	Name string `json:"name"`
	// Score is the weighted share of the group's metrics that pass, 0-100.
	Score float64 `json:"score"`
	// Weight is the group's share of the run's score, 0-1.
	Weight float64 `json:"weight"`
	Pass   int     `json:"pass"`
	High   int     `json:"high"`
	Low    int     `json:"low"`
	NoData int     `json:"noData"`
}

// TemplateArg declares an argument a template takes; without a Value it must be given by the
// AnalysisRef that uses the template.
type TemplateArg struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}

// NoDataPolicy says what a measurement that returned no data counts as.
type NoDataPolicy string

// No-data policies. A missing measurement never counts as a success.
const (
	NoDataInconclusive NoDataPolicy = "inconclusive"
	NoDataFailure      NoDataPolicy = "failure"
)

// DefaultConsecutiveErrorLimit is how many measurement errors in a row a metric tolerates;
// one more ends it Inconclusive.
const DefaultConsecutiveErrorLimit = 4

// Metric is one measurement to take repeatedly and judge.
type Metric struct {
	Name     string       `json:"name"`
	Provider ProviderSpec `json:"provider"`
	// Interval between measurements. Zero with Count <= 1 means one measurement.
	Interval Duration `json:"interval,omitempty"`
	// Count is how many measurements to take; a measurement that errors is retried and never
	// counts. 0 with an Interval means until the run is terminated (background analysis).
	Count        int      `json:"count,omitempty"`
	InitialDelay Duration `json:"initialDelay,omitempty"`
	// SuccessCondition and FailureCondition are CEL expressions over `result`.
	SuccessCondition      string       `json:"successCondition,omitempty"`
	FailureCondition      string       `json:"failureCondition,omitempty"`
	FailureLimit          int          `json:"failureLimit,omitempty"`
	InconclusiveLimit     int          `json:"inconclusiveLimit,omitempty"`
	ConsecutiveErrorLimit *int         `json:"consecutiveErrorLimit,omitempty"`
	NoData                NoDataPolicy `json:"noData,omitempty"`
	DryRun                bool         `json:"dryRun,omitempty"`
	// SampleTimeout bounds how long the metric waits for a minimum sample (while its provider
	// answers ErrInsufficientData) before that counts as no data. Zero means the rollout's
	// progress deadline (a run of a rollout fills it in), or DefaultSampleTimeout outside one.
	SampleTimeout Duration `json:"sampleTimeout,omitempty"`
	// Group, Weight and Critical place the metric in a scored template (Scoring): its group
	// ("" is a group too), its weight within the group (0 means 1), and whether a High or Low
	// fails the run whatever the score and NoData keeps it from passing.
	Group    string  `json:"group,omitempty"`
	Weight   float64 `json:"weight,omitempty"`
	Critical bool    `json:"critical,omitempty"`
}

// DefaultSampleTimeout is how long a metric outside a rollout (a flag ramp's) waits for a
// minimum sample when it sets no sampleTimeout: DefaultProgressDeadline, as long as a
// rollout waits by default.
const DefaultSampleTimeout = DefaultProgressDeadline

// ErrorLimit returns the consecutive error limit in force.
func (m Metric) ErrorLimit() int {
	if m.ConsecutiveErrorLimit != nil {
		return *m.ConsecutiveErrorLimit
	}
	return DefaultConsecutiveErrorLimit
}

// ProviderSpec configures exactly one provider.
type ProviderSpec struct {
	Web        *WebMetric        `json:"web,omitempty"`
	Job        *JobMetric        `json:"job,omitempty"`
	Builtin    *BuiltinMetric    `json:"builtin,omitempty"`
	Prometheus *PrometheusMetric `json:"prometheus,omitempty"`
}

// Kind names the provider set in p, or "" when none is.
func (p ProviderSpec) Kind() string {
	switch {
	case p.Web != nil:
		return "web"
	case p.Job != nil:
		return "job"
	case p.Builtin != nil:
		return "builtin"
	case p.Prometheus != nil:
		return "prometheus"
	}
	return ""
}

// WebMetric measures by an HTTP request; the result is the JSON value at JSONPath in the
// response body (the whole body when JSONPath is empty).
type WebMetric struct {
	URL      string            `json:"url"`
	Method   string            `json:"method,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Body     string            `json:"body,omitempty"`
	JSONPath string            `json:"jsonPath,omitempty"`
	Timeout  Duration          `json:"timeout,omitempty"`
	// Compare, when set, judges the answer as the canary's sample against the baseline's
	// instead of by conditions.
	Compare *WebCompare `json:"compare,omitempty"`
}

// JobMetric measures by running a command: exit 0 passes. Its output is kept with the
// measurement.
type JobMetric struct {
	Command string            `json:"command"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Timeout Duration          `json:"timeout,omitempty"`
}

// Builtin metric names: what BuiltinMetric.Metric may be.
const (
	BuiltinErrorRate   = "error_rate"   // share (0-1) of requests answered 5xx
	BuiltinRequestRate = "request_rate" // requests per second
	BuiltinLatencyP50  = "latency_p50"  // seconds
	BuiltinLatencyP95  = "latency_p95"  // seconds
	BuiltinLatencyP99  = "latency_p99"  // seconds
	BuiltinRequests    = "requests"     // count over the window
	// BuiltinSlowRate is the share (0-1) of requests slower than BuiltinMetric.SlowerThan.
	BuiltinSlowRate = "slow_rate"
)

// BuiltinMetrics lists the builtin metric names.
func BuiltinMetrics() []string {
	return []string{BuiltinErrorRate, BuiltinRequestRate, BuiltinLatencyP50, BuiltinLatencyP95, BuiltinLatencyP99, BuiltinRequests, BuiltinSlowRate}
}

// Builtin revision selectors: the rollout's canary (new) or stable (old) revision.
const (
	BuiltinCanary = "canary"
	BuiltinStable = "stable"
	// BuiltinBaseline is the revision a canary is compared with: an experiment step's fresh
	// baseline while it runs, the stable revision otherwise.
	BuiltinBaseline = "baseline"
)

// DefaultBuiltinWindow is the window of a builtin metric that sets none.
const DefaultBuiltinWindow = Duration(30 * time.Second)

// DefaultMinRequests is the minimum sample of a builtin metric that sets none: the requests
// (for an outcome metric, reported outcomes) its window must hold to be measured. At 20 one
// request moves an error rate by 5 points at most, and a canary failing 20% of its requests
// shows at least one failure with 99% probability (0.8^20 is about 1.2%); a service taking
// 15 requests/s fills it within seconds at a 10% canary weight.
const DefaultMinRequests = 20

// BuiltinMetric measures what slipway's own proxy saw one revision serve over a recent
// window. A window with fewer than MinRequests requests is not enough data yet: the metric
// waits for its sample (Metric.SampleTimeout), then counts it as no data (never a success).
type BuiltinMetric struct {
	// Metric is one of BuiltinMetrics: error_rate, request_rate, latency_p50, latency_p95,
	// latency_p99 or requests.
	Metric string `json:"metric"`
	// Revision is "canary" (the default) or "stable", or a revision ID (templates usually
	// write {{canary.revision}}). A run fills it with the rollout's revision ID.
	Revision string `json:"revision,omitempty"`
	// Window is how far back to look, in whole seconds; DefaultBuiltinWindow when zero.
	Window Duration `json:"window,omitempty"`
	// App is the app whose proxy served the requests; a run fills it with the rollout's app.
	App string `json:"app,omitempty"`
	// Flag, Variant and Outcome select reported flag outcomes (BuiltinOutcomeRate and
	// BuiltinOutcomeCount): the flag's key, the variant (templates usually write
	// {{variant}}) and the outcome counted (OutcomeError when empty).
	Flag    string `json:"flag,omitempty"`
	Variant string `json:"variant,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	// MinRequests is the minimum sample: how many requests the window must hold (for an
	// outcome metric, how many outcomes were reported) before it is measured;
	// DefaultMinRequests when zero.
	MinRequests int `json:"minRequests,omitempty"`
	// SlowerThan is the latency limit of slow_rate: a request that took longer counts as
	// slow (and, for a sequential test, as a failure).
	SlowerThan Duration `json:"slowerThan,omitempty"`
	// Sequential, when set, judges the metric (error_rate or slow_rate) by a sequential test
	// of the canary revision against the stable one instead of by conditions.
	Sequential *SequentialTest `json:"sequential,omitempty"`
	// Compare, when set, judges a latency metric (latency_p50, latency_p95 or latency_p99,
	// which then all mean the same: the whole distribution) by comparing the canary's
	// request latencies with the baseline's instead of by conditions.
	Compare *BuiltinCompare `json:"compare,omitempty"`
}

// SequentialTest judges a builtin metric by comparing the canary revision's failures (5xx
// answers for error_rate, slow requests for slow_rate) with the baseline revision's, both
// counted from the start of the analysis run, by an anytime-valid sequential test
// (analysis/stats.RateTest). Each measurement fails when the canary is shown to fail more
// than Tolerance more often than the baseline, passes when it is shown not to, and otherwise
// is no measurement yet: the metric waits, as for a minimum sample (docs/analysis.md).
type SequentialTest struct {
	// Tolerance is how much worse the canary's rate may be, in rate units (0.01: one point).
	Tolerance float64 `json:"tolerance"`
	// Alpha bounds the chance that a canary within Tolerance is ever failed (default 0.05);
	// Beta the chance that a worse one is ever passed (default Alpha).
	Alpha float64 `json:"alpha,omitempty"`
	Beta  float64 `json:"beta,omitempty"`
	// MinRequests is the fewest requests each revision must have answered before any
	// decision; DefaultSequentialMinRequests when zero.
	MinRequests int `json:"minRequests,omitempty"`
	// Scale is the difference beyond Tolerance the test decides on soonest (default
	// Tolerance, or 0.01 when that is 0): 0.1 fails a canary that fails ten points more
	// often after fewer requests, at the cost of more requests to pass a healthy one.
	Scale float64 `json:"scale,omitempty"`
	// Baseline is the revision compared with: "stable" (the default) or a revision ID. A run
	// fills it with the rollout's stable revision ID.
	Baseline string `json:"baseline,omitempty"`
	// Since is when the counts start; a run sets it to its own start, a file never does.
	Since *time.Time `json:"since,omitempty"`
}

// DefaultSequentialMinRequests is the fewest requests each revision must have answered
// before a sequential test decides, when it sets no minRequests.
const DefaultSequentialMinRequests = 50

// MinSample returns the minimum sample in force: MinRequests, or DefaultMinRequests.
func (b BuiltinMetric) MinSample() int {
	if b.MinRequests > 0 {
		return b.MinRequests
	}
	return DefaultMinRequests
}

// Reductions: what PrometheusMetric.Reduce may be, how an answer with many samples (many
// series, or a range query's points) becomes one number.
const (
	ReduceSum  = "sum"  // the sum of the samples
	ReduceAvg  = "avg"  // their mean
	ReduceMin  = "min"  // the smallest
	ReduceMax  = "max"  // the largest
	ReduceLast = "last" // the latest sample of the only series
)

// Reductions lists the reductions a Prometheus metric may name.
func Reductions() []string {
	return []string{ReduceSum, ReduceAvg, ReduceMin, ReduceMax, ReduceLast}
}

// DefaultPrometheusTimeout bounds a Prometheus query whose metric sets no timeout.
const DefaultPrometheusTimeout = Duration(10 * time.Second)

// MaxPrometheusQuery is the longest query (in bytes, after its placeholders are expanded) a
// Prometheus metric may send.
const MaxPrometheusQuery = 8 << 10

// MaxPrometheusPoints is the most points per series a range query may ask for: range.duration
// over range.step. Prometheus itself refuses more than 11,000.
const MaxPrometheusPoints = 11000

// PrometheusMetric measures by a PromQL query to a Prometheus server's HTTP API (or anything
// that serves it: Thanos, Mimir, VictoriaMetrics). The result is one number: the answer's only
// sample, or its samples reduced by Reduce. An answer with no sample, or whose value is NaN or
// an infinity, is no data.
type PrometheusMetric struct {
	// Address is the server's base URL, http or https, like http://127.0.0.1:9090; the API's
	// paths (/api/v1/query) are appended to it.
	Address string `json:"address"`
	// Query is the PromQL expression, with {{...}} placeholders expanded when the run starts.
	Query string `json:"query"`
	// Range, when set, makes the query a range query over the last Range.Duration, one point
	// every Range.Step; its answer must be reduced.
	Range *PrometheusRange `json:"range,omitempty"`
	// Reduce is one of Reductions: how many samples become one number. Without it an answer
	// with more than one sample is an error.
	Reduce string `json:"reduce,omitempty"`
	// Headers are sent with every query (a tenant header such as X-Scope-OrgID).
	Headers map[string]string `json:"headers,omitempty"`
	// HeadersFrom are headers whose values are read when each query is sent, from the
	// server's environment or a file, so that a credential is kept in neither the template
	// nor the runs, which every viewer may read.
	HeadersFrom map[string]HeaderSource `json:"headersFrom,omitempty"`
	// Timeout bounds the query, on the wire and in the server's evaluation;
	// DefaultPrometheusTimeout when zero.
	Timeout Duration `json:"timeout,omitempty"`
	// Compare, when set, judges the range query's samples (the canary's) against a
	// baseline's instead of conditions: canary versus baseline, statistically.
	Compare *PrometheusCompare `json:"compare,omitempty"`
}

// Comparison is how a comparative judge weighs a canary's sample against a baseline's: a
// Mann-Whitney U test at Confidence with an allowed shift (analysis/stats.Judge). Each
// measurement is classed Pass, High, Low or NoData; NoData is never a pass.
type Comparison struct {
	// Direction is the way the metric gets worse: increase, decrease or either.
	Direction string `json:"direction"`
	// Confidence is 1 minus the chance of failing a canary within its allowance (0.95 when
	// 0). Tolerance is the allowed shift as a fraction of the baseline's median (0.1: 10%
	// worse), Margin the same in the metric's unit; the larger applies.
	Confidence float64 `json:"confidence,omitempty"`
	Tolerance  float64 `json:"tolerance,omitempty"`
	Margin     float64 `json:"margin,omitempty"`
	// MinSamples is the fewest samples either side may have (10 when 0).
	MinSamples int `json:"minSamples,omitempty"`
}

// PrometheusCompare judges a range query's points (the canary's sample) against the
// baseline query's points over the same range.
type PrometheusCompare struct {
	// Baseline is the PromQL of the baseline's samples, queried over the same range.
	Baseline string `json:"baseline"`
	Comparison
}

// BuiltinCompare judges a latency metric by comparing the latencies of the canary's
// requests over the window with the baseline revision's, from slipway's own proxy: every
// request is one value of its side's sample, at the upper bound of its latency bucket.
type BuiltinCompare struct {
	// Baseline is the revision compared with: "baseline" (the default: an experiment's
	// fresh baseline, else stable), "stable" or a revision ID. A run fills it with an ID.
	Baseline string `json:"baseline,omitempty"`
	Comparison
}

// WebCompare judges a web metric's answer (the canary's sample: the JSON array of numbers
// at the metric's jsonPath) against the same path in the answer of the Baseline URL.
type WebCompare struct {
	// Baseline is the URL of the baseline's sample, fetched like the metric's URL.
	Baseline string `json:"baseline"`
	Comparison
}

// CompareDirections lists the directions a comparison may name.
func CompareDirections() []string { return []string{"increase", "decrease", "either"} }

// PrometheusRange is the window of a range query: it ends when the measurement is taken.
type PrometheusRange struct {
	Duration Duration `json:"duration"`
	Step     Duration `json:"step"`
}

// HeaderSource is where a header's value is read from: exactly one of an environment
// variable of the server (Env) or a file (File), with Prefix put before it (like "Bearer ").
// Surrounding white space, such as a file's final newline, is trimmed.
type HeaderSource struct {
	Env    string `json:"env,omitempty"`
	File   string `json:"file,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// Provider takes one measurement of a metric whose template arguments are already expanded.
// It returns ErrNoData when the source answered with nothing to measure. The value is what
// CEL conditions see as `result`: a float64, bool, string, []any or map[string]any.
type Provider interface {
	Measure(ctx context.Context, m Metric) (value any, err error)
}

// Verdict is the state of a measurement, a metric or an analysis run.
type Verdict string

// Verdicts. Measurements end Successful, Failed, Inconclusive or Error; metrics and runs are
// Running until they end Successful, Failed or Inconclusive, or are Terminated by the engine.
// Error is a measurement's verdict only: a metric whose errors exceed its limit ends
// Inconclusive, so a run never ends Error (docs/analysis.md).
const (
	VerdictRunning      Verdict = "Running"
	VerdictSuccessful   Verdict = "Successful"
	VerdictFailed       Verdict = "Failed"
	VerdictInconclusive Verdict = "Inconclusive"
	VerdictError        Verdict = "Error"
	VerdictTerminated   Verdict = "Terminated"
)

// Terminal reports whether v is final for a metric or a run.
func (v Verdict) Terminal() bool {
	switch v {
	case VerdictSuccessful, VerdictFailed, VerdictInconclusive, VerdictTerminated:
		return true
	case VerdictRunning, VerdictError:
		return false
	}
	return false
}

// Rank orders verdicts from best to worst; a run's verdict is its worst metric's.
func (v Verdict) Rank() int {
	switch v {
	case VerdictSuccessful, VerdictTerminated:
		return 0
	case VerdictRunning:
		return 1
	case VerdictInconclusive, VerdictError:
		return 2
	case VerdictFailed:
		return 3
	}
	return 1
}

// AnalysisKind says what a run is for within a rollout.
type AnalysisKind string

// Analysis kinds.
const (
	AnalysisStep          AnalysisKind = "step"
	AnalysisBackground    AnalysisKind = "background"
	AnalysisPrePromotion  AnalysisKind = "prePromotion"
	AnalysisPostPromotion AnalysisKind = "postPromotion"
)

// AnalysisRun is one execution of one or more templates for a rollout, with every
// measurement taken.
type AnalysisRun struct {
	ID string `json:"id"`
	// App and Rollout are what a rollout's run judges; Flag is the flag whose ramp step a
	// run of Kind AnalysisRamp judges.
	App     string       `json:"app"`
	Rollout string       `json:"rollout"`
	Flag    string       `json:"flag,omitempty"`
	Kind    AnalysisKind `json:"kind"`
	// Step is the canary step index the run belongs to (step and background runs).
	Step      int      `json:"step"`
	Templates []string `json:"templates"`
	// Metrics are the templates' metrics with every {{...}} argument expanded.
	Metrics    []Metric       `json:"metrics"`
	Results    []MetricResult `json:"results"`
	Phase      Verdict        `json:"phase"`
	Message    string         `json:"message,omitempty"`
	StartedAt  time.Time      `json:"startedAt"`
	FinishedAt *time.Time     `json:"finishedAt,omitempty"`
	// Scoring is the templates' scoring when the run is scored; Score its latest scorecard,
	// set once every metric has a class.
	Scoring *Scoring  `json:"scoring,omitempty"`
	Score   *RunScore `json:"score,omitempty"`
	// Version is the optimistic concurrency version (see Store).
	Version int64 `json:"version"`
}

// MetricResult is the state of one metric within a run; Results[i] belongs to Metrics[i].
// Count is the measurements taken without error (Successful + Failed + Inconclusive); Errors
// counts the tries that errored, ConsecutiveError those since the last measurement.
type MetricResult struct {
	Name             string        `json:"name"`
	Phase            Verdict       `json:"phase"`
	Message          string        `json:"message,omitempty"`
	DryRun           bool          `json:"dryRun,omitempty"`
	Count            int           `json:"count"`
	Successful       int           `json:"successful"`
	Failed           int           `json:"failed"`
	Inconclusive     int           `json:"inconclusive"`
	Errors           int           `json:"errors"`
	ConsecutiveError int           `json:"consecutiveErrors"`
	Measurements     []Measurement `json:"measurements,omitempty"`
	// Waiting is set while the metric waits for a minimum sample.
	Waiting *SampleWait `json:"waiting,omitempty"`
}

// SampleWait is a metric's wait for a minimum sample: its provider answered
// ErrInsufficientData, which is neither a measurement nor an error. The metric checks again
// shortly after each check, until the sample is there or its sample timeout has passed since
// the wait began.
type SampleWait struct {
	// Since is when the first check of the wait began.
	Since time.Time `json:"since"`
	// CheckedAt is when the last check finished, Checks how many there were.
	CheckedAt time.Time `json:"checkedAt"`
	Checks    int       `json:"checks"`
	// Message is what the last check saw.
	Message string `json:"message"`
}

// MaxMeasurementsKept is how many measurements of one metric a run keeps; counters keep
// counting past it.
const MaxMeasurementsKept = 50

// Measurement is one judged measurement.
type Measurement struct {
	Phase Verdict `json:"phase"`
	// Value is the measured value as JSON, or the job's output.
	Value   string `json:"value,omitempty"`
	Message string `json:"message,omitempty"`
	// Class is how a scored run weighs the measurement: Pass, High, Low or NoData (empty for
	// an error, which is no measurement).
	Class      string    `json:"class,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// TemplateVars are the variables every AnalysisTemplate may use besides {{args.NAME}}: the
// app's name, its environment, and the stable and canary revisions and versions of the
// rollout.
func TemplateVars() []string {
	return []string{"app", "environment", "stable.revision", "stable.version", "canary.revision", "canary.version", "baseline.revision", "baseline.version"}
}
