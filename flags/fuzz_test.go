package flags_test

import (
	"encoding/json"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flags"
)

// FuzzEvaluate: any rule that compiles evaluates without panicking or failing internally,
// for any context.
func FuzzEvaluate(f *testing.F) {
	f.Add(`{"if":[{"ends_with":[{"var":"email"},"@example.com"]},"on","off"]}`, `{"email":"a@example.com"}`)
	f.Add(`{"fractional":[{"cat":[{"var":"$flagd.flagKey"},{"var":"email"}]},["on",10],["off",90]]}`, `{"email":"x"}`)
	f.Add(`{"sem_ver":[{"var":"v"},"^","1.0.0"]}`, `{"v":"1.2"}`)
	f.Add(`{"filter":[{"var":"l"},{">":[{"var":""},{"var":"x"}]}]}`, `{"l":[1,2,3],"x":1}`)
	f.Add(`{"reduce":[{"var":"l"},{"+":[{"var":"current"},{"var":"accumulator"}]},0]}`, `{"l":[1,"2",null]}`)
	f.Add(`{"if":[true,{"var":"rule"}]}`, `{"rule":{"var":"rule"}}`)
	f.Add(`{"substr":["abc",{"var":"a"},{"var":"b"}]}`, `{"a":2,"b":-3}`)
	f.Add(`{"in":[{"var":"a"},[[1,2],"x"]]}`, `{"a":[1]}`)
	f.Fuzz(func(t *testing.T, rule, ctx string) {
		var c map[string]any
		if json.Unmarshal([]byte(ctx), &c) != nil {
			c = nil
		}
		fs := slipway.FlagSet{Flags: map[string]slipway.Flag{"f": {
			State:     slipway.FlagEnabled,
			Variants:  map[string]json.RawMessage{"on": []byte("true"), "off": []byte("false")},
			Targeting: json.RawMessage(rule),
		}}}
		s, err := flags.Compile(fs)
		if err != nil {
			return
		}
		ev := s.Evaluate("f", c, now)
		if strings.HasPrefix(ev.ErrorDetails, "internal") {
			t.Fatalf("rule %s with %s: %s", rule, ctx, ev.ErrorDetails)
		}
	})
}
