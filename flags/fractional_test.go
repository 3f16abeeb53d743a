package flags_test

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/twmb/murmur3"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

func TestMurmur3_SanityValues(t *testing.T) {
	for in, want := range map[string]uint32{
		"": 0, "a": 0x3c2569b2, "hello": 0x248bfa47,
		"The quick brown fox jumps over the lazy dog": 0x2e4ff723,
		"headerColorrachel@faas.com":                  1805633606,
		"headerColormonica@faas.com":                  3314683759,
		"headerColorjoey@faas.com":                    309582631,
		"headerColorross@faas.com":                    1595699981,
		"my-seedrachel@faas.com":                      2931187178,
		"my-seedmonica@faas.com":                      309002457,
		"my-seedjoey@faas.com":                        1300152927,
		"my-seedross@faas.com":                        3030988938,
		"rollout-10pctuser-1":                         318169287,
		"rollout-10pctuser-2":                         1155651409,
	} {
		if got := murmur3.StringSum32(in); got != want {
			t.Errorf("murmur3(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestFractional_ReferenceVectors checks every vector of the reference table, both the
// bucket number and the variant served through a whole evaluation.
func TestFractional_ReferenceVectors(t *testing.T) {
	colors := `{"red":"red","blue":"blue","green":"green","yellow":"yellow"}`
	quarters := `["red",25],["blue",25],["green",25],["yellow",25]`
	byFlagKey := ruleSet(t, "headerColor", colors, "red",
		`{"fractional":[{"cat":[{"var":"$flagd.flagKey"},{"var":"email"}]},`+quarters+`]}`)
	bySeed := ruleSet(t, "headerColor", colors, "red",
		`{"fractional":[{"cat":["my-seed",{"var":"email"}]},`+quarters+`]}`)
	rollout := ruleSet(t, "rollout-10pct", `{"on":true,"off":false}`, "off",
		`{"fractional":[["on",10],["off",90]]}`)

	tests := []struct {
		set      *flags.Set
		key      string
		ctx      string
		bucketBy string
		weights  []int64
		bucket   uint64
		want     string
	}{
		{byFlagKey, "headerColor", `{"email":"rachel@faas.com"}`, "headerColorrachel@faas.com", nil, 42, "blue"},
		{byFlagKey, "headerColor", `{"email":"monica@faas.com"}`, "headerColormonica@faas.com", nil, 77, "yellow"},
		{byFlagKey, "headerColor", `{"email":"joey@faas.com"}`, "headerColorjoey@faas.com", nil, 7, "red"},
		{byFlagKey, "headerColor", `{"email":"ross@faas.com"}`, "headerColorross@faas.com", nil, 37, "blue"},
		{bySeed, "headerColor", `{"email":"rachel@faas.com"}`, "my-seedrachel@faas.com", nil, 68, "green"},
		{bySeed, "headerColor", `{"email":"monica@faas.com"}`, "my-seedmonica@faas.com", nil, 7, "red"},
		{bySeed, "headerColor", `{"email":"joey@faas.com"}`, "my-seedjoey@faas.com", nil, 30, "blue"},
		{bySeed, "headerColor", `{"email":"ross@faas.com"}`, "my-seedross@faas.com", nil, 70, "green"},
		{rollout, "rollout-10pct", `{"targetingKey":"user-1"}`, "rollout-10pctuser-1", []int64{10, 90}, 7, "on"},
		{rollout, "rollout-10pct", `{"targetingKey":"user-2"}`, "rollout-10pctuser-2", []int64{10, 90}, 26, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.bucketBy, func(t *testing.T) {
			weights := tt.weights
			if weights == nil {
				weights = []int64{25, 25, 25, 25}
			}
			if b := (uint64(murmur3.StringSum32(tt.bucketBy)) * 100) >> 32; b != tt.bucket {
				t.Errorf("bucket = %d, want %d", b, tt.bucket)
			}
			var names map[int]string
			if tt.weights == nil {
				names = map[int]string{0: "red", 1: "blue", 2: "green", 3: "yellow"}
			} else {
				names = map[int]string{0: "on", 1: "off"}
			}
			if got := names[flags.Bucket(tt.bucketBy, weights)]; got != tt.want {
				t.Errorf("Bucket = %s, want %s", got, tt.want)
			}
			ev := tt.set.Evaluate(tt.key, ctxOf(t, tt.ctx), now)
			if ev.Variant != tt.want || ev.Reason != slipway.ReasonTargetingMatch {
				t.Errorf("Evaluate = %+v, want variant %s TARGETING_MATCH", ev, tt.want)
			}
		})
	}
}

// TestFractional_Distribution buckets a million keys 10/90 and checks the share is within
// 0.2 points of 10%.
func TestFractional_Distribution(t *testing.T) {
	const n = 1_000_000
	on := 0
	weights := []int64{10, 90}
	for i := range n {
		if flags.Bucket("rollout-10pctuser-"+strconv.Itoa(i), weights) == 0 {
			on++
		}
	}
	share := float64(on) / n * 100
	t.Logf("on share: %.3f%%", share)
	if math.Abs(share-10) > 0.2 {
		t.Errorf("on share = %.3f%%, want 10%% ± 0.2", share)
	}
	// The evaluator agrees with Bucket on a sample.
	s := ruleSet(t, "rollout-10pct", `{"on":true,"off":false}`, "off", `{"fractional":[["on",10],["off",90]]}`)
	for i := range 2000 {
		tk := "user-" + strconv.Itoa(i)
		want := "off"
		if flags.Bucket("rollout-10pct"+tk, weights) == 0 {
			want = "on"
		}
		if ev := s.Evaluate("rollout-10pct", map[string]any{"targetingKey": tk}, now); ev.Variant != want {
			t.Fatalf("%s: variant %s, want %s", tk, ev.Variant, want)
		}
	}
}

// TestFractional_Sticky raises the first variant's weight with the total constant: a key
// that was in the first variant never leaves it.
func TestFractional_Sticky(t *testing.T) {
	const total = 1000
	in := make([]bool, 5000)
	for w := int64(0); w <= total; w += 25 {
		weights := []int64{w, total - w}
		count := 0
		for i := range in {
			first := flags.Bucket("ramp"+strconv.Itoa(i), weights) == 0
			if in[i] && !first {
				t.Fatalf("key %d left the first variant when its weight rose to %d", i, w)
			}
			in[i] = first
			if first {
				count++
			}
		}
		if w == 0 && count != 0 || w == total && count != len(in) {
			t.Fatalf("weight %d: %d keys in the first variant", w, count)
		}
	}
}

func TestFractional_Semantics(t *testing.T) {
	variants := `{"a":"A","b":"B","c":"C"}`
	start := now.Unix() - 30
	tests := []struct {
		name, rule, ctx string
		want            string // variant, or "" for reason DEFAULT with the default variant "c"
	}{
		{"targetingKey fallback", `{"fractional":[["a",1],["b",0]]}`, `{"targetingKey":"u"}`, "a"},
		{"missing targetingKey is null", `{"fractional":[["a",1],["b",1]]}`, `{}`, ""},
		{"empty targetingKey is null", `{"fractional":[["a",1],["b",1]]}`, `{"targetingKey":""}`, ""},
		{"non-string targetingKey is null", `{"fractional":[["a",1],["b",1]]}`, `{"targetingKey":5}`, ""},
		{"null bucketing value falls back to targetingKey", `{"fractional":[{"var":"email"},["a",0],["b",1]]}`, `{"targetingKey":"u"}`, "b"},
		{"number bucketing value is null", `{"fractional":[{"var":"n"},["a",1],["b",1]]}`, `{"targetingKey":"u","n":5}`, ""},
		{"nested bucketing value", `{"fractional":[{"cat":["x",{"var":"id"}]},["a",0],["b",1]]}`, `{"id":"7"}`, "b"},
		{"nested variant", `{"fractional":[{"var":"id"},[{"if":[{"var":"beta"},"a","c"]},1],["b",0]]}`, `{"id":"7","beta":true}`, "a"},
		{"nested weight from the timestamp", fmt.Sprintf(`{"fractional":[{"var":"id"},["a",{"-":[{"var":"$flagd.timestamp"},%d]}],["b",0]]}`, start), `{"id":"7"}`, "a"},
		{"negative weight is clamped to 0", `{"fractional":[{"var":"id"},["a",{"-":[0,5]}],["b",1]]}`, `{"id":"7"}`, "b"},
		{"weights all 0 is null", `{"fractional":[{"var":"id"},["a",0],["b",0]]}`, `{"id":"7"}`, ""},
		{"fractional weight is null", `{"fractional":[{"var":"id"},["a",{"var":"w"}],["b",1]]}`, `{"id":"7","w":1.5}`, ""},
		{"weight over MaxInt32 is null", `{"fractional":[{"var":"id"},["a",{"var":"w"}],["b",1]]}`, `{"id":"7","w":3000000000}`, ""},
		{"total over MaxInt32 is null", `{"fractional":[{"var":"id"},["a",2000000000],["b",2000000000]]}`, `{"id":"7"}`, ""},
		{"null weight counts as 1", `{"fractional":[{"var":"id"},["a",null],["b",0]]}`, `{"id":"7"}`, "a"},
		{"missing weight counts as 1", `{"fractional":[{"var":"id"},["a"],["b",0]]}`, `{"id":"7"}`, "a"},
		{"one distribution without bucketing value is null", `{"fractional":[["a",1]]}`, `{"targetingKey":"u"}`, ""},
		{"null variant is null", `{"fractional":[{"var":"id"},[null,1]]}`, `{"id":"7"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ruleSet(t, "f", variants, "c", tt.rule)
			ev := s.Evaluate("f", ctxOf(t, tt.ctx), now)
			if tt.want == "" {
				if ev.Reason != slipway.ReasonDefault || ev.Variant != "c" {
					t.Errorf("got %+v, want DEFAULT c", ev)
				}
				return
			}
			if ev.Reason != slipway.ReasonTargetingMatch || ev.Variant != tt.want {
				t.Errorf("got %+v, want TARGETING_MATCH %s", ev, tt.want)
			}
		})
	}
}

func TestFractional_BooleanVariants(t *testing.T) {
	s := ruleSet(t, "f", `{"true":1,"false":0}`, "false", `{"fractional":[{"var":"id"},[true,1],[false,0]]}`)
	if ev := s.Evaluate("f", map[string]any{"id": "x"}, now); ev.Variant != "true" || ev.Value != float64(1) {
		t.Errorf("got %+v, want variant true", ev)
	}
}
