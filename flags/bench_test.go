package flags_test

import (
	"testing"
)

// benchFile holds 11 flags: static ones, targeted ones (ends_with, in, sem_ver, ==) and
// fractional splits, like a typical application's flag file.
const benchFile = `{
  "metadata": {"flagSetId": "bench", "team": "web"},
  "flags": {
    "static-bool": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "static-string": {"state": "ENABLED", "variants": {"a": "alpha", "b": "beta"}, "defaultVariant": "b"},
    "static-number": {"state": "ENABLED", "variants": {"low": 1, "high": 100}, "defaultVariant": "high"},
    "static-object": {"state": "ENABLED", "variants": {"small": {"size": 1}}, "defaultVariant": "small"},
    "disabled": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
    "ends-with": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}},
    "fractional": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"fractional": [["on", 10], ["off", 90]]}},
    "fractional-by-email": {"state": "ENABLED", "variants": {"red": "r", "blue": "b", "green": "g", "yellow": "y"}, "defaultVariant": "red",
      "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]}, ["red", 25], ["blue", 25], ["green", 25], ["yellow", 25]]}},
    "country": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"in": [{"var": "country"}, ["CA", "US", "MX"]]}, "on", "off"]}},
    "version": {"state": "ENABLED", "variants": {"new": "new", "old": "old"}, "defaultVariant": "old",
      "targeting": {"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "2.1.0"]}, "new", "old"]}},
    "plan": {"state": "ENABLED", "variants": {"pro": "pro", "free": "free"}, "defaultVariant": "free",
      "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "pro", null]}}
  }
}`

var benchCtx = map[string]any{
	"targetingKey": "user-123",
	"email":        "ann@example.com",
	"country":      "CA",
	"appVersion":   "2.3.1",
	"plan":         "pro",
}

func BenchmarkEvaluateStatic(b *testing.B) {
	s := compileJSON(b, benchFile)
	b.ReportAllocs()
	for b.Loop() {
		if ev := s.Evaluate("static-bool", benchCtx, now); !ev.HasValue {
			b.Fatal("no value")
		}
	}
}

func BenchmarkEvaluateStaticBool(b *testing.B) {
	s := compileJSON(b, benchFile)
	b.ReportAllocs()
	for b.Loop() {
		if !s.Bool("static-bool", false, benchCtx, now) {
			b.Fatal("false")
		}
	}
}

func BenchmarkEvaluateTargeted(b *testing.B) {
	s := compileJSON(b, benchFile)
	for _, bc := range []struct{ name, key, want string }{
		{"ends_with", "ends-with", "on"},
		{"fractional", "fractional", "off"},
		{"fractional_cat", "fractional-by-email", ""},
		{"in", "country", "on"},
		{"sem_ver", "version", "new"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev := s.Evaluate(bc.key, benchCtx, now)
				if bc.want != "" && ev.Variant != bc.want {
					b.Fatalf("variant %q, want %q", ev.Variant, bc.want)
				}
			}
		})
	}
}

func BenchmarkEvaluateAll(b *testing.B) {
	s := compileJSON(b, benchFile)
	if n := len(s.Keys()); n != 11 {
		b.Fatalf("%d flags", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if evs := s.EvaluateAll(benchCtx, now); len(evs) != 11 {
			b.Fatal(len(evs))
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		compileJSON(b, benchFile)
	}
}
