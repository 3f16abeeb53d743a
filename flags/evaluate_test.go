package flags_test

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

const reasonsFile = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"flagSetId": "shop", "team": "web", "version": 3},
  "flags": {
    "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
      "metadata": {"team": "payments", "beta": true}},
    "no-default": {"state": "ENABLED", "variants": {"on": true, "off": false}},
    "null-default": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": null},
    "disabled": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "empty-targeting": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a", "targeting": {}},
    "banner": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}},
    "maybe": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", null]}},
    "maybe-no-default": {"state": "ENABLED", "variants": {"on": true}, 
      "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", null]}},
    "shorthand": {"state": "ENABLED", "variants": {"true": "yes", "false": "no"}, "defaultVariant": "false",
      "targeting": {"==": [{"var": "plan"}, "pro"]}},
    "number-name": {"state": "ENABLED", "variants": {"1": "one", "2": "two"}, "defaultVariant": "1",
      "targeting": {"+": [{"var": "n"}, 1]}},
    "unknown-variant": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
      "targeting": {"var": "pick"}},
    "failing": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on",
      "targeting": {"cat": [true, "x"]}},
    "faas": {"state": "ENABLED", "variants": {"binet": "binet", "recursive": "recursive"}, "defaultVariant": "recursive",
      "targeting": {"if": [{"$ref": "emailWithFaas"}, "binet", null]}},
    "own-key": {"state": "ENABLED", "variants": {"mine": 1, "other": 2}, "defaultVariant": "other",
      "targeting": {"if": [{"==": [{"var": "$flagd.flagKey"}, "own-key"]}, "mine", "other"]}},
    "after": {"state": "ENABLED", "variants": {"on": {"color": "red"}, "off": {"color": "blue"}}, "defaultVariant": "off",
      "targeting": {"if": [{">=": [{"var": "$flagd.timestamp"}, 1743379200]}, "on", "off"]}}
  },
  "$evaluators": {"emailWithFaas": {"in": ["@faas.com", {"var": ["email"]}]}}
}`

func TestEvaluate_Reasons(t *testing.T) {
	s := compileJSON(t, reasonsFile)
	tests := []struct {
		key, ctx string
		reason   slipway.Reason
		variant  string
		value    any
		code     slipway.FlagErrorCode
	}{
		{"static", ``, slipway.ReasonStatic, "on", true, ""},
		{"no-default", ``, slipway.ReasonDefault, "", nil, ""},
		{"null-default", ``, slipway.ReasonDefault, "", nil, ""},
		{"disabled", ``, slipway.ReasonDisabled, "", nil, ""},
		{"empty-targeting", ``, slipway.ReasonStatic, "a", "A", ""},
		{"banner", `{"email":"ann@example.com"}`, slipway.ReasonTargetingMatch, "on", true, ""},
		{"banner", `{"email":"ann@other.com"}`, slipway.ReasonTargetingMatch, "off", false, ""},
		{"banner", ``, slipway.ReasonTargetingMatch, "off", false, ""},
		{"maybe", `{"plan":"pro"}`, slipway.ReasonTargetingMatch, "on", true, ""},
		{"maybe", `{"plan":"free"}`, slipway.ReasonDefault, "off", false, ""},
		{"maybe-no-default", `{"plan":"free"}`, slipway.ReasonDefault, "", nil, ""},
		{"shorthand", `{"plan":"pro"}`, slipway.ReasonTargetingMatch, "true", "yes", ""},
		{"shorthand", `{"plan":"free"}`, slipway.ReasonTargetingMatch, "false", "no", ""},
		{"number-name", `{"n":1}`, slipway.ReasonTargetingMatch, "2", "two", ""},
		{"unknown-variant", `{"pick":"nope"}`, slipway.ReasonError, "", nil, slipway.FlagGeneral},
		{"unknown-variant", `{"pick":"on"}`, slipway.ReasonTargetingMatch, "on", true, ""},
		{"failing", ``, slipway.ReasonError, "", nil, slipway.FlagParseError},
		{"missing", ``, slipway.ReasonError, "", nil, slipway.FlagNotFound},
		{"faas", `{"email":"x@faas.com"}`, slipway.ReasonTargetingMatch, "binet", "binet", ""},
		{"faas", `{"email":"x@gmail.com"}`, slipway.ReasonDefault, "recursive", "recursive", ""},
		{"own-key", `{"$flagd":{"flagKey":"spoofed"}}`, slipway.ReasonTargetingMatch, "mine", float64(1), ""},
		{"after", ``, slipway.ReasonTargetingMatch, "on", map[string]any{"color": "red"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.key+tt.ctx, func(t *testing.T) {
			ev := s.Evaluate(tt.key, ctxOf(t, tt.ctx), now)
			if ev.Key != tt.key || ev.Reason != tt.reason || ev.Variant != tt.variant || ev.ErrorCode != tt.code {
				t.Fatalf("got %+v, want reason %s variant %q code %q", ev, tt.reason, tt.variant, tt.code)
			}
			if ev.HasValue != (tt.value != nil) {
				t.Fatalf("HasValue = %v, want %v", ev.HasValue, tt.value != nil)
			}
			if tt.value != nil && !equalJSON(ev.Value, tt.value) {
				t.Errorf("value = %#v, want %#v", ev.Value, tt.value)
			}
			if (tt.code != "") != (ev.ErrorDetails != "") {
				t.Errorf("error details %q with code %q", ev.ErrorDetails, tt.code)
			}
			if ev.Metadata["flagSetId"] != "shop" || ev.Metadata["version"] != float64(3) {
				t.Errorf("metadata %v lacks the set's metadata", ev.Metadata)
			}
		})
	}
}

func equalJSON(a, b any) bool {
	am, ok1 := a.(map[string]any)
	bm, ok2 := b.(map[string]any)
	if ok1 && ok2 {
		if len(am) != len(bm) {
			return false
		}
		for k, v := range am {
			if !equalJSON(v, bm[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestEvaluate_MetadataFlagWinsOverSet(t *testing.T) {
	s := compileJSON(t, reasonsFile)
	md := s.Evaluate("static", nil, now).Metadata
	if md["team"] != "payments" || md["beta"] != true || md["flagSetId"] != "shop" {
		t.Errorf("metadata = %v", md)
	}
	if md := s.Evaluate("banner", nil, now).Metadata; md["team"] != "web" {
		t.Errorf("banner metadata = %v, want the set's team", md)
	}
	if md := s.Evaluate("missing", nil, now).Metadata; md["team"] != "web" {
		t.Errorf("not-found metadata = %v, want the set's", md)
	}
}

func TestEvaluate_FlagdTimestampIsUnixSeconds(t *testing.T) {
	s := ruleSet(t, "f", `{"early":1,"late":2}`, "early",
		`{"if":[{"<":[{"var":"$flagd.timestamp"},1743379201]},"early","late"]}`)
	if v := s.Evaluate("f", nil, now).Variant; v != "early" {
		t.Errorf("at now: %s", v)
	}
	if v := s.Evaluate("f", nil, now.Add(1e9)).Variant; v != "late" {
		t.Errorf("a second later: %s", v)
	}
	whole := ruleSet(t, "f", `{"f1743379200":1}`, "",
		`{"cat":[{"var":"$flagd.flagKey"},{"var":"$flagd.timestamp"}]}`)
	if ev := whole.Evaluate("f", map[string]any{"$flagd": "user value"}, now); ev.Variant != "f1743379200" {
		t.Errorf("got %+v", ev)
	}
}

func TestEvaluate_DoesNotModifyContext(t *testing.T) {
	s := compileJSON(t, reasonsFile)
	ctx := map[string]any{"email": "a@faas.com"}
	s.EvaluateAll(ctx, now)
	if len(ctx) != 1 {
		t.Errorf("context modified: %v", ctx)
	}
}

func TestEvaluateAll_SortedByKey(t *testing.T) {
	s := compileJSON(t, reasonsFile)
	all := s.EvaluateAll(map[string]any{"email": "a@example.com"}, now)
	keys := make([]string, len(all))
	for i, ev := range all {
		keys[i] = ev.Key
		if single := s.Evaluate(ev.Key, map[string]any{"email": "a@example.com"}, now); single.Variant != ev.Variant || single.Reason != ev.Reason {
			t.Errorf("%s: bulk %+v, single %+v", ev.Key, ev, single)
		}
	}
	if !slices.IsSorted(keys) || len(keys) != 15 || !slices.Equal(keys, s.Keys()) {
		t.Errorf("keys = %v", keys)
	}
}

func TestSet_TypedValues(t *testing.T) {
	s := compileJSON(t, reasonsFile)
	ctx := map[string]any{"email": "a@example.com"}
	if !s.Bool("banner", false, ctx, now) {
		t.Error("Bool(banner) = false")
	}
	if s.Bool("disabled", false, nil, now) || !s.Bool("disabled", true, nil, now) {
		t.Error("Bool(disabled) did not return the default")
	}
	if got := s.String("shorthand", "d", map[string]any{"plan": "pro"}, now); got != "yes" {
		t.Errorf("String = %q", got)
	}
	if got := s.String("banner", "d", ctx, now); got != "d" {
		t.Errorf("String on a bool flag = %q, want the default", got)
	}
	if got := s.Float("own-key", 0, nil, now); got != 1 {
		t.Errorf("Float = %v", got)
	}
	if got := s.Float("missing", 7, nil, now); got != 7 {
		t.Errorf("Float(missing) = %v", got)
	}
}

func TestCurrent_SwapIsAtomic(t *testing.T) {
	a := compileJSON(t, `{"flags":{"f":{"state":"ENABLED","variants":{"v":1},"defaultVariant":"v"}}}`)
	b := compileJSON(t, `{"flags":{"f":{"state":"ENABLED","variants":{"v":2},"defaultVariant":"v"}}}`)
	c := flags.NewCurrent(a)
	var wg sync.WaitGroup
	bad := make(chan any, 1)
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				v := c.Load().Evaluate("f", nil, now).Value
				if v != float64(1) && v != float64(2) {
					select {
					case bad <- v:
					default:
					}
				}
			}
		})
	}
	for i := range 200 {
		if i%2 == 0 {
			c.Swap(b)
		} else {
			c.Swap(a)
		}
	}
	wg.Wait()
	close(bad)
	if v, ok := <-bad; ok {
		t.Fatalf("saw value %v", v)
	}
	if old := c.Swap(b); old != a {
		t.Errorf("Swap returned %p, want %p", old, a)
	}
	if c.Load() != b {
		t.Error("Load did not return the swapped set")
	}
	var empty flags.Current
	if empty.Load() != nil {
		t.Error("zero Current is not empty")
	}
}

func TestCompile_Errors(t *testing.T) {
	dv := "x"
	fs := slipway.FlagSet{ID: "s", Flags: map[string]slipway.Flag{
		"f": {State: "ON", Variants: map[string]json.RawMessage{}, DefaultVariant: &dv, Targeting: []byte(`{"nope":[1]}`)},
	}}
	_, err := flags.Compile(fs)
	if slipway.ErrorCode(err) != slipway.EINVALID {
		t.Fatalf("err = %v", err)
	}
	text := err.Error()
	for _, want := range []string{
		`flags.f.state: "ON" is not a state; use ENABLED or DISABLED`,
		`flags.f.variants: a flag needs at least one variant`,
		`flags.f.defaultVariant: "x" names no variant`,
		`flags.f.targeting.nope: unknown operator "nope"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("error lacks %q:\n%s", want, text)
		}
	}
}
