// Package flags evaluates feature flags written in flagd's flag file format: it checks a
// flag set (Check), compiles every flag's JSON Logic targeting once into a tree of Go nodes
// (Compile), and evaluates flags against a context with flagd's semantics (Set.Evaluate,
// Set.EvaluateAll), including flagd's fractional bucketing, sem_ver, starts_with and
// ends_with. It does no I/O and reads no files (package flagfile does): the OFREP server, the
// store and the CLI build on it.
//
// Start reading at Set.Evaluate (set.go) for the resolution rules, then compile.go for the
// operators and custom.go for fractional. The JSON Logic semantics (truthiness, loose
// equality, conversions) follow github.com/diegoholiveira/jsonlogic/v3, the library flagd
// uses; the tests cross-check the compiled evaluator against it.
//
// A Set is immutable and safe for concurrent use; Current swaps a new Set in atomically.
package flags
