package flags_test

import (
	"encoding/json"
	"testing"
	"time"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flagfile"
	"slipway.dev/slipway/flags"
)

// now is the evaluation time used by tests: 2025-03-31T00:00:00Z.
var now = time.Unix(1743379200, 0)

// compileJSON parses and compiles a flag file written as JSON.
func compileJSON(tb testing.TB, src string) *flags.Set {
	tb.Helper()
	fs, err := flagfile.Parse("test.json", []byte(src))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	s, err := flags.Compile(fs)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return s
}

// ruleSet compiles a set with one flag "f" whose targeting is rule and whose variants are
// given as JSON.
func ruleSet(tb testing.TB, key, variants, defaultVariant, rule string) *flags.Set {
	tb.Helper()
	var dv *string
	if defaultVariant != "" {
		dv = &defaultVariant
	}
	var vs map[string]json.RawMessage
	if err := json.Unmarshal([]byte(variants), &vs); err != nil {
		tb.Fatal(err)
	}
	fs := slipway.FlagSet{ID: "t", Flags: map[string]slipway.Flag{
		key: {Key: key, State: slipway.FlagEnabled, Variants: vs, DefaultVariant: dv, Targeting: json.RawMessage(rule)},
	}}
	s, err := flags.Compile(fs)
	if err != nil {
		tb.Fatalf("Compile %s: %v", rule, err)
	}
	return s
}

func ctxOf(tb testing.TB, js string) map[string]any {
	tb.Helper()
	if js == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}
