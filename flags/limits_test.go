package flags_test

import (
	"encoding/json"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// TestCompile_KeysAndVariantNamesHaveLimits: hostile keys and variant names are refused, each
// with a short message (a 100,000-character key is not echoed back whole).
func TestCompile_KeysAndVariantNamesHaveLimits(t *testing.T) {
	on := "on"
	good := slipway.Flag{State: slipway.FlagEnabled, DefaultVariant: &on, Variants: map[string]json.RawMessage{"on": json.RawMessage("true")}}
	for _, key := range []string{"", "a\x00b", "../x", "<script>", "-x", "a b", "é", strings.Repeat("k", 100000), "a/b"} {
		_, err := flags.Compile(slipway.FlagSet{ID: "s", Flags: map[string]slipway.Flag{key: good}})
		if slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("key %.20q: %v, want EINVALID", key, err)
			continue
		}
		if len(err.Error()) > 400 {
			t.Errorf("key %.20q: a %d-byte error", key, len(err.Error()))
		}
	}
	for _, variant := range []string{"", "on\n", "<b>", strings.Repeat("v", 129)} {
		f := slipway.Flag{State: slipway.FlagEnabled, Variants: map[string]json.RawMessage{variant: json.RawMessage("true")}}
		if _, err := flags.Compile(slipway.FlagSet{ID: "s", Flags: map[string]slipway.Flag{"f": f}}); slipway.ErrorCode(err) != slipway.EINVALID {
			t.Errorf("variant %.20q: %v, want EINVALID", variant, err)
		}
	}
	for _, key := range []string{"new-checkout", "a", "team:feature.v2", strings.Repeat("k", 128)} {
		if _, err := flags.Compile(slipway.FlagSet{ID: "s", Flags: map[string]slipway.Flag{key: good}}); err != nil {
			t.Errorf("key %.20q: %v", key, err)
		}
	}
}
