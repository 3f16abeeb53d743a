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

// Step is one canary step of the demo app: its YAML and the label progress lines show.
type Step struct{ YAML, Label string }

// Steps are the demo app's canary steps: 20%, analysis, 50%, analysis, a 2s pause.
func Steps() []Step {
	return []Step{
		{"- setWeight: 20", "setWeight 20"},
		{"- analysis: {templates: [demo-error-rate]}", "analysis"},
		{"- setWeight: 50", "setWeight 50"},
		{"- analysis: {templates: [demo-error-rate]}", "analysis"},
		{"- pause: {duration: 2s}", "pause 2s"},
	}
}

// File is the demo's slipway file at version: the app (Replicas instances of `exe demo-app`,
// failing errorRate of their requests when not "", behind slipway's proxy on listen) and its
// two analysis templates. Both judge the canary's error rate as slipway's proxy counts it
// (the builtin provider): one in the analysis steps, one in the background from the first
// analysis step to the end of the rollout, each measurement failing the rollout at 5% or more.
func File(exe, listen, version, errorRate string) []byte {
	args := []string{"demo-app", "--port", "${PORT}", "--version", version}
	if errorRate != "" {
		args = append(args, "--error-rate", errorRate)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	var steps strings.Builder
	for _, s := range Steps() {
		steps.WriteString("        " + s.YAML + "\n")
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
%[7]s  # Watch the canary's error rate from its first analysis step to the end of the rollout.
  analysis:
    templates: [demo-error-rate-watch]
    startingStep: 1
---
apiVersion: slipway.dev/v1alpha1
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
`, strconv.Quote(exe), listen, version, AppName, Replicas, strings.Join(quoted, ", "), steps.String())
}
