// Package analysis runs analysis runs: it takes the measurements of a run's metrics with
// their providers, judges each one with the metric's CEL conditions, and decides the metric
// and run verdicts, by slipway's rule that an unknown result is never a success.
//
// Start reading at NewRun (newrun.go), which builds a run from a rollout and its templates,
// then Record, Due and Terminate (run.go): the pure rules the engine and the Runner share.
// judge.go holds the threshold judge over CEL. Runner.Execute (runner.go) drives one run
// against the store, one measurement per commit, and resumes after a restart.
package analysis
