package demo

import (
	"fmt"
	"strconv"
	"strings"
)

// The app `slipway demo` deploys.
const (
	// AppName is the demo app's name.
	AppName = "demo"
	// Replicas is how many instances the demo app runs.
	Replicas = 4
	// BadErrorRate is the share of requests a bad canary of the demo fails.
	BadErrorRate = "0.2"
)

// The analyses the demo's templates may judge the canary by.
const (
	// AnalysisSequential compares the canary's error rate with the stable's by a sequential
	// test on every request since the analysis began: it fails a bad canary as soon as the
	// evidence is there (docs/analysis.md, "Sequential fail-fast").
	AnalysisSequential = "sequential"
	// AnalysisThreshold judges the canary's error rate over a 2s window against a fixed 5%.
	AnalysisThreshold = "threshold"
)

// Analyses lists what Options.Analysis may be.
func Analyses() []string { return []string{AnalysisSequential, AnalysisThreshold} }

// DefaultWeight is the canary's first weight, in percent.
const DefaultWeight = 20

// Options are the demo app's knobs; the zero value is the default demo.
type Options struct {
	// Weight is the canary's first weight in percent (1-49); DefaultWeight when zero.
	Weight int
	// Analysis is one of Analyses; AnalysisSequential when empty.
	Analysis string
}

func (o Options) weight() int {
	if o.Weight == 0 {
		return DefaultWeight
	}
	return o.Weight
}

// Step is one canary step of the demo app: its YAML and the label progress lines show.
type Step struct{ YAML, Label string }

// Steps are the demo app's canary steps: the first weight (20%), analysis, 50%, analysis, a
// 2s pause.
func Steps(o Options) []Step {
	w := strconv.Itoa(o.weight())
	return []Step{
		{"- setWeight: " + w, "setWeight " + w},
		{"- analysis: {templates: [demo-error-rate]}", "analysis"},
		{"- setWeight: 50", "setWeight 50"},
		{"- analysis: {templates: [demo-error-rate]}", "analysis"},
		{"- pause: {duration: 2s}", "pause 2s"},
	}
}

// The demo's analysis templates, by Options.Analysis. Both judge the canary's error rate as
// slipway's proxy counts it (the builtin provider): demo-error-rate in the analysis steps,
// demo-error-rate-watch in the background to the end of the rollout, failing the rollout at
// the first failed measurement.
//
// Sequential: a step passes once the canary is shown to fail at most 5 points more often
// than the stable revision (about 190 canary requests when it fails none); the watch fails
// once it is shown to fail more than 1 point more often, tuned (scale 0.1) to catch a much
// worse canary soonest (about 15 requests for one failing 20%).
var templates = map[string]string{
	AnalysisSequential: `apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: demo-error-rate}
spec:
  metrics:
    - name: canary-error-rate
      count: 1
      interval: 200ms
      failureLimit: 0
      provider:
        builtin:
          metric: error_rate
          revision: "{{canary.revision}}"
          sequential: {tolerance: 0.05, scale: 0.1, minRequests: 10}
---
apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: demo-error-rate-watch}
spec:
  metrics:
    - name: canary-error-rate-watch
      interval: 100ms
      failureLimit: 0
      inconclusiveLimit: 3
      provider:
        builtin:
          metric: error_rate
          revision: "{{canary.revision}}"
          sequential: {tolerance: 0.01, scale: 0.1, minRequests: 10}
`,
	AnalysisThreshold: `apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: demo-error-rate}
spec:
  metrics:
    - name: canary-error-rate
      interval: 500ms
      count: 4
      successCondition: "result < 0.05"
      failureLimit: 0
      inconclusiveLimit: 2
      provider:
        builtin: {metric: error_rate, revision: "{{canary.revision}}", window: 2s}
---
apiVersion: slipway.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: demo-error-rate-watch}
spec:
  metrics:
    - name: canary-error-rate-watch
      interval: 500ms
      successCondition: "result < 0.05"
      failureLimit: 0
      inconclusiveLimit: 3
      provider:
        builtin: {metric: error_rate, revision: "{{canary.revision}}", window: 2s}
`,
}

// File is the demo's slipway file at version: the app (Replicas instances of `exe demo-app`,
// failing errorRate of their requests when not "", behind slipway's proxy on listen) and its
// two analysis templates of o.Analysis.
func File(exe, listen, version, errorRate string, o Options) []byte {
	args := []string{"demo-app", "--port", "${PORT}", "--version", version}
	if errorRate != "" {
		args = append(args, "--error-rate", errorRate)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	var steps strings.Builder
	for _, s := range Steps(o) {
		steps.WriteString("        " + s.YAML + "\n")
	}
	tpl, ok := templates[o.Analysis]
	if !ok {
		tpl = templates[AnalysisSequential]
	}
	// A window of the canary's errors is empty until its first weight is set, so the
	// threshold watch begins at the first analysis step. A sequential test waits for its
	// evidence by itself, so it watches from the start, counting the canary's first request.
	watchFrom := 0
	if o.Analysis == AnalysisThreshold {
		watchFrom = 1
	}
	return fmt.Appendf(nil, `# The app of "slipway demo", at %[3]s.
apiVersion: slipway.dev/v1alpha1
kind: App
metadata: {name: %[4]s}
spec:
  replicas: %[5]d
  version: %[3]s
  run:
    command: %[1]s
    args: [%[6]s]
  health:
    readiness: {http: {path: /healthz}, period: 500ms}
  traffic: {listen: %[2]q}
  strategy:
    canary:
      steps:
%[7]s  # Watch the canary's error rate to the end of the rollout, from step %[9]d.
  analysis:
    templates: [demo-error-rate-watch]
    startingStep: %[9]d
---
%[8]s`, strconv.Quote(exe), listen, version, AppName, Replicas, strings.Join(quoted, ", "), steps.String(), tpl, watchFrom)
}
