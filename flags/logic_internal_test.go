package flags

import (
	"encoding/json"
	"testing"

	"github.com/diegoholiveira/jsonlogic/v3"
)

// evalRule compiles rule for flag key "f" and evaluates it against data at timestamp ts.
func evalRule(tb testing.TB, rule, data string, ts int64) (any, error) {
	tb.Helper()
	var r any
	if err := json.Unmarshal([]byte(rule), &r); err != nil {
		tb.Fatalf("rule %s: %v", rule, err)
	}
	var d map[string]any
	if data != "" {
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			tb.Fatalf("data %s: %v", data, err)
		}
	}
	c := &compiler{flagKey: "f"}
	n := c.compile(r, nil)
	if len(c.problems) > 0 {
		tb.Fatalf("compile %s: %v", rule, c.problems)
	}
	return run(n, env{root: d, ts: ts, data: rootRef{}})
}

// library evaluates rule with github.com/diegoholiveira/jsonlogic/v3 the way flagd does: the
// context enriched with $flagd and round-tripped through JSON.
func library(tb testing.TB, rule, data string, ts int64) (any, error) {
	tb.Helper()
	var r any
	if err := json.Unmarshal([]byte(rule), &r); err != nil {
		tb.Fatal(err)
	}
	d := map[string]any{}
	if data != "" {
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			tb.Fatal(err)
		}
	}
	d["$flagd"] = map[string]any{"flagKey": "f", "timestamp": float64(ts)}
	return jsonlogic.ApplyInterface(r, d)
}

func asJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal %#v: %v", v, err)
	}
	return string(b)
}

// TestLogic_AgreesWithLibrary evaluates JSON Logic expressions flagd users write with the
// compiled evaluator and with the library flagd uses, and checks both give the expected
// result.
func TestLogic_AgreesWithLibrary(t *testing.T) {
	const data = `{"email":"ann@example.com","age":42,"plan":"pro","tags":["a","b"],"user":{"country":"CA","score":7.5},
		"nums":[1,2,3,4],"zero":0,"empty":"","t":true,"numstr":"10","items":[{"n":1},{"n":5}]}`
	tests := []struct{ rule, want string }{
		{`{"var":"email"}`, `"ann@example.com"`},
		{`{"var":"user.country"}`, `"CA"`},
		{`{"var":"tags.1"}`, `"b"`},
		{`{"var":["missing","dflt"]}`, `"dflt"`},
		{`{"var":["user.none",5]}`, `5`},
		{`{"var":"missing"}`, `null`},
		{`{"var":"$flagd.flagKey"}`, `"f"`},
		{`{"var":"$flagd.timestamp"}`, `1743379200`},
		{`{"if":[{"var":"t"},"yes","no"]}`, `"yes"`},
		{`{"if":[false,"a",{"var":"zero"},"b","c"]}`, `"c"`},
		{`{"if":[{"var":"missing"},"a"]}`, `null`},
		{`{"==":[1,"1"]}`, `true`},
		{`{"==":[0,false]}`, `true`},
		{`{"==":[null,0]}`, `false`},
		{`{"===":[1,"1"]}`, `false`},
		{`{"!=":[{"var":"plan"},"free"]}`, `true`},
		{`{"!==":[1,1]}`, `false`},
		{`{"!":[{"var":"empty"}]}`, `true`},
		{`{"!!":[{"var":"tags"}]}`, `true`},
		{`{"!!":[[]]}`, `false`},
		{`{"and":[true,{"var":"age"}]}`, `42`},
		{`{"and":[{"var":"zero"},true]}`, `0`},
		{`{"or":[false,"",{"var":"plan"}]}`, `"pro"`},
		{`{"<":[{"var":"age"},50]}`, `true`},
		{`{"<":[1,{"var":"age"},40]}`, `false`},
		{`{"<=":[42,{"var":"age"},42]}`, `true`},
		{`{">":["b","a"]}`, `true`},
		{`{">=":[{"var":"numstr"},9]}`, `true`},
		{`{"in":["@example",{"var":"email"}]}`, `true`},
		{`{"in":["c",{"var":"tags"}]}`, `false`},
		{`{"in":[3,{"var":"nums"}]}`, `true`},
		{`{"cat":["Hi ",{"var":"user.country"},"!"]}`, `"Hi CA!"`},
		{`{"cat":[1.5," x"]}`, `"1.5 x"`},
		{`{"+":[1,"2",{"var":"age"}]}`, `45`},
		{`{"-":[10,3]}`, `7`},
		{`{"-":[3]}`, `-3`},
		{`{"*":[2,{"var":"user.score"}]}`, `15`},
		{`{"/":[9,2]}`, `4.5`},
		{`{"%":[{"var":"age"},5]}`, `2`},
		{`{"min":[3,1,2]}`, `1`},
		{`{"max":[{"var":"age"},7]}`, `42`},
		{`{"substr":["slipway",4]}`, `"way"`},
		{`{"substr":["slipway",-3,2]}`, `"wa"`},
		{`{"merge":[[1,2],3,[4]]}`, `[1,2,3,4]`},
		{`{"map":[{"var":"nums"},{"*":[{"var":""},2]}]}`, `[2,4,6,8]`},
		{`{"filter":[{"var":"nums"},{">":[{"var":""},2]}]}`, `[3,4]`},
		{`{"all":[{"var":"nums"},{">":[{"var":""},0]}]}`, `true`},
		{`{"some":[{"var":"items"},{">":[{"var":"n"},3]}]}`, `true`},
		{`{"none":[{"var":"nums"},{">":[{"var":""},9]}]}`, `true`},
		{`{"reduce":[{"var":"nums"},{"+":[{"var":"current"},{"var":"accumulator"}]},0]}`, `10`},
		{`{"missing":["email","nope"]}`, `["nope"]`},
		{`{"if":[{"in":[{"var":"user.country"},["CA","US"]]},{"cat":["na-",{"var":"plan"}]},"row"]}`, `"na-pro"`},
	}
	const ts = 1743379200
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			got, err := evalRule(t, tt.rule, data, ts)
			if err != nil {
				t.Fatalf("compiled: %v", err)
			}
			lib, err := library(t, tt.rule, data, ts)
			if err != nil {
				t.Fatalf("library: %v", err)
			}
			if g := asJSON(t, got); g != tt.want {
				t.Errorf("compiled = %s, want %s", g, tt.want)
			}
			if l := asJSON(t, lib); l != tt.want {
				t.Errorf("library = %s, want %s", l, tt.want)
			}
		})
	}
}

// TestLogic_FailsWhereLibraryFails: expressions that make the library fail make the
// compiled rule fail too (flagd reports PARSE_ERROR).
func TestLogic_FailsWhereLibraryFails(t *testing.T) {
	for _, rule := range []string{
		`{"cat":[true,"x"]}`,
		`{"in":[1,"123"]}`,
		`{"==":"x"}`,
		`{"+":[{"var":"t"},1]}`,
	} {
		if _, err := evalRule(t, rule, `{"t":true}`, 0); err == nil {
			t.Errorf("%s: compiled rule did not fail", rule)
		}
		if _, err := library(t, rule, `{"t":true}`, 0); err == nil {
			t.Errorf("%s: library did not fail", rule)
		}
	}
}

func TestLogic_CustomOperators(t *testing.T) {
	tests := []struct{ rule, data, want string }{
		{`{"starts_with":[{"var":"email"},"ann"]}`, `{"email":"ann@x.io"}`, `true`},
		{`{"starts_with":[{"var":"email"},"Ann"]}`, `{"email":"ann@x.io"}`, `false`},
		{`{"ends_with":[{"var":"email"},"@x.io"]}`, `{"email":"ann@x.io"}`, `true`},
		{`{"ends_with":[{"var":"email"},"@y.io"]}`, `{"email":"ann@x.io"}`, `false`},
		{`{"ends_with":[{"var":"email"}]}`, `{"email":"ann@x.io"}`, `null`},
		{`{"ends_with":[{"var":"email"},"a","b"]}`, `{"email":"ann@x.io"}`, `null`},
		{`{"starts_with":[{"var":"missing"},"a"]}`, `{}`, `null`},
		{`{"starts_with":[5,"5"]}`, `{}`, `null`},
		{`{"ends_with":["abc",1]}`, `{}`, `null`},
		{`{"starts_with":"abc"}`, `{}`, `null`},
		{`{"sem_ver":["1.2.3","=","1.2.3"]}`, ``, `true`},
		{`{"sem_ver":["1.2.3","!=","1.2.4"]}`, ``, `true`},
		{`{"sem_ver":["1.2.3","<","1.10.0"]}`, ``, `true`},
		{`{"sem_ver":["1.2.3","<=","1.2.3"]}`, ``, `true`},
		{`{"sem_ver":["2.0.0",">","1.99.99"]}`, ``, `true`},
		{`{"sem_ver":["1.0.0-alpha",">=","1.0.0"]}`, ``, `false`},
		{`{"sem_ver":["1.0.0-beta",">","1.0.0-alpha"]}`, ``, `true`},
		{`{"sem_ver":["1.5.0","^","1.0.0"]}`, ``, `true`},
		{`{"sem_ver":["2.0.0","^","1.0.0"]}`, ``, `false`},
		{`{"sem_ver":["1.2.9","~","1.2.0"]}`, ``, `true`},
		{`{"sem_ver":["1.3.0","~","1.2.0"]}`, ``, `false`},
		{`{"sem_ver":["v1.2.3","=","V1.2.3"]}`, ``, `true`},
		{`{"sem_ver":["v1.2","=","1.2.0"]}`, ``, `true`},
		{`{"sem_ver":["v1",">=","1.0.0"]}`, ``, `true`},
		{`{"sem_ver":["1.2.3+build","=","1.2.3"]}`, ``, `true`},
		{`{"sem_ver":[{"var":"version"},">=","1.2"]}`, `{"version":"1.10.0"}`, `true`},
		{`{"sem_ver":[{"var":"version"},">=","1.2"]}`, `{}`, `null`},
		{`{"sem_ver":[1.2,"=","1.2.0"]}`, ``, `true`},
		{`{"sem_ver":["1.2.3","=>","1.2.3"]}`, ``, `null`},
		{`{"sem_ver":["1.2.3","="]}`, ``, `null`},
		{`{"sem_ver":["not.a.version","=","1.0.0"]}`, ``, `null`},
		{`{"if":[{"sem_ver":[{"var":"v"},">","2.0.0"]},"new","old"]}`, `{}`, `"old"`},
	}
	for _, tt := range tests {
		t.Run(tt.rule+tt.data, func(t *testing.T) {
			got, err := evalRule(t, tt.rule, tt.data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if g := asJSON(t, got); g != tt.want {
				t.Errorf("got %s, want %s", g, tt.want)
			}
		})
	}
}

func TestCompile_Problems(t *testing.T) {
	tests := []struct{ rule, want string }{
		{`{"nope":[1]}`, `nope: unknown operator "nope"`},
		{`{"if":[{"frob":[]},"a"]}`, `if[0].frob: unknown operator "frob"`},
		{`{"and":{"var":"x"}}`, `and: "and" takes an array of arguments, not object`},
		{`{"$ref":"missing"}`, `$ref: $ref "missing" names no evaluator; $evaluators is empty`},
		{`{"fractional":[{"var":"id"},["a",1.5],[]]}`, `fractional[1][1]: a fractional weight must be an integer`},
	}
	for _, tt := range tests {
		var r any
		if err := json.Unmarshal([]byte(tt.rule), &r); err != nil {
			t.Fatal(err)
		}
		c := &compiler{}
		c.compile(r, nil)
		found := false
		for _, p := range c.problems {
			if s := pathString(p.path) + ": " + p.msg; len(s) >= len(tt.want) && s[:len(tt.want)] == tt.want {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problems %v, want %q", tt.rule, c.problems, tt.want)
		}
	}
}
