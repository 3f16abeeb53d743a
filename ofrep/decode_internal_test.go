package ofrep

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		body string
		want map[string]any
		err  string
	}{
		{``, map[string]any{}, ""},
		{` null `, map[string]any{}, ""},
		{`{}`, map[string]any{}, ""},
		{`{"context":null}`, map[string]any{}, ""},
		{`{"context":{"targetingKey":"u","n":-1.5e3,"ok":true,"no":false,"z":null,"a":[1,"x",{}],"o":{"k":"v"}}}`,
			map[string]any{"targetingKey": "u", "n": -1500.0, "ok": true, "no": false, "z": nil,
				"a": []any{1.0, "x", map[string]any{}}, "o": map[string]any{"k": "v"}}, ""},
		{`{"context":{"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00\ud800x"}}`, map[string]any{"s": "a\"b\\c/d\né😀\uFFFDx"}, ""},
		{"{\"context\":{\"s\":\"caf\xe9\"}}", map[string]any{"s": "caf\uFFFD"}, ""},
		{`{"x":[1,2],"context":{"a":1},"y":{"b":[]}}`, map[string]any{"a": 1.0}, ""},
		{`{"context":{"a":1}`, nil, "unterminated object"},
		{`{"context":{"a":01}}`, nil, "expected ',' or '}' in an object"},
		{`{"context":{"a":1.}}`, nil, "invalid number"},
		{`{"context":{"a":1e999}}`, nil, "number out of range"},
		{`{"context":{"a":"x` + "\x01" + `"}}`, nil, "control character"},
		{`{"context":{"a":"\q"}}`, nil, "invalid escape"},
		{`{"context":{"a":"\u12"}}`, nil, "invalid \\u escape"},
		{`{"context":{a:1}}`, nil, "expected a string key"},
		{`{"context":{}} x`, nil, "unexpected data"},
		{`{"context":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, nil, "context must be a JSON object"},
		{`{"context":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, nil, "nested too deeply"},
		{`[]`, nil, "must be a JSON object"},
	}
	for _, tt := range tests {
		ctx := map[string]any{"stale": true}
		err := decodeRequest([]byte(tt.body), ctx)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.body, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.body, err)
			continue
		}
		delete(ctx, "stale")
		if !reflect.DeepEqual(ctx, tt.want) {
			t.Errorf("%q: got %#v, want %#v", tt.body, ctx, tt.want)
		}
	}
}

// FuzzDecodeValue checks the decoder against encoding/json on any value inside a context.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{`1`, `-0.5e-7`, `"a\u00e9\ud83d\ude00"`, `[1,{"a":null}]`, `{"x":{"y":[true,false]}}`, `"\ud800"`, "\"\xff\"", `1e400`, `01`, `{"a":1,"a":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.Count(v, "[")+strings.Count(v, "{") > 60 {
			return // deeper than this decoder's limit, within encoding/json's
		}
		ctx := map[string]any{}
		err := decodeRequest([]byte(`{"context":{"v":`+v+`}}`), ctx)
		var want any
		werr := json.Unmarshal([]byte(v), &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: decoder error %v, encoding/json error %v", v, err, werr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(ctx["v"], want) {
			t.Fatalf("%q: got %#v, want %#v", v, ctx["v"], want)
		}
		// Canonical encoding round-trips.
		var back any
		if err := json.Unmarshal(appendValue(nil, ctx["v"]), &back); err != nil || !reflect.DeepEqual(back, want) {
			t.Fatalf("%q: encoded %s, back %#v (%v)", v, appendValue(nil, ctx["v"]), back, err)
		}
	})
}

func TestAppendValue(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{map[string]any{"b": 1.0, "a": []any{true, nil, "x"}}, `{"a":[true,null,"x"],"b":1}`},
		{1e21, `1e+21`},
		{1e-7, `1e-7`},
		{123456789.0, `123456789`},
		{math.Inf(1), `null`},
		{"\u2028<\x00>\xff", `"\u2028<\u0000>\ufffd"`},
		{int64(-3), `-3`},
		{uint8(7), `7`},
		{json.Number("12.50"), `12.50`},
	}
	for _, tt := range tests {
		if got := string(appendValue(nil, tt.v)); got != tt.want {
			t.Errorf("%#v: got %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestMatches(t *testing.T) {
	const etag = `"abc"`
	for h, want := range map[string]bool{
		`"abc"`: true, `abc`: true, `W/"abc"`: true, `*`: true, `"x", "abc"`: true, `"x",abc`: true,
		`"abcd"`: false, `"ab"`: false, ``: false, `"x"`: false,
	} {
		if got := matches(h, etag); got != want {
			t.Errorf("matches(%q) = %v", h, got)
		}
	}
}
