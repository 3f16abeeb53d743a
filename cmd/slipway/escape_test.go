package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"slipway.dev/slipway"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain ASCII", "rollout web-2 started", "rollout web-2 started"},
		{"printable Unicode", "déploiement → 20% ✓ 日本語 🚀", "déploiement → 20% ✓ 日本語 🚀"},
		{"backslash kept", `C:\logs\x1b`, `C:\logs\x1b`},
		{"clear screen and forged line", "ok\x1b[2J\nFORGED line", `ok\x1b[2J\nFORGED line`},
		{"carriage return", "ok\rFORGED", `ok\rFORGED`},
		{"tab", "a\tb", `a\tb`},
		{"NUL and BEL", "a\x00b\x07", `a\x00b\x07`},
		{"DEL", "a\x7fb", `a\x7fb`},
		{"C1 CSI", "a\u009b2Jb", `a\u009b2Jb`},
		{"C1 NEL", "a\u0085b", `a\u0085b`},
		{"right-to-left override", "invoice\u202egpj.exe", `invoice\u202egpj.exe`},
		{"bidi isolates and marks", "\u2066a\u2069\u200f\u061c", `\u2066a\u2069\u200f\u061c`},
		{"zero-width space and BOM", "we\u200bb\ufeff", `we\u200bb\ufeff`},
		{"line and paragraph separators", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"soft hyphen", "a\u00adb", `a\u00adb`},
		{"tag characters", "a\U000e0041b", `a\U000e0041b`},
		{"joiners kept", "👩\u200d💻 می\u200cخواهم", "👩\u200d💻 می\u200cخواهم"},
		{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"truncated rune then ESC", "\xe2\x80\x1b", `\xe2\x80\x1b`},
		{"encoded surrogate", "\xed\xa0\x80", `\xed\xa0\x80`},
		{"replacement character kept", "a\ufffdb", "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := escape(tt.in)
			if got != tt.want {
				t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := escape(got); again != got {
				t.Errorf("escape is not idempotent: %q, then %q", got, again)
			}
		})
	}
}

func TestEscape_TypedStrings(t *testing.T) {
	if got := escape(slipway.Phase("Paused\x1b[2J")); got != `Paused\x1b[2J` {
		t.Errorf("escape(Phase) = %q", got)
	}
}

func TestErrorText(t *testing.T) {
	hostile := "ok\x1b[2J\nFORGED line"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain error", errors.New(hostile), `ok\x1b[2J\nFORGED line`},
		{"server error", &slipway.Error{Code: slipway.ENOTFOUND, Message: hostile}, `ok\x1b[2J\nFORGED line`},
		{"details stay one line each", &slipway.Error{Code: slipway.EINVALID, Message: "2 errors in " + hostile, Details: []string{"a\nb", "c\u202ed"}},
			"2 errors in ok\\x1b[2J\\nFORGED line\n  a\\nb\n  c\\u202ed"},
		{"wrapped error with details", fmt.Errorf("apply: %w", &slipway.Error{Code: slipway.EINVALID, Message: "m\r", Details: []string{"d\x1b"}}),
			"apply: m\\r\n  d\\x1b"},
		{"details followed by more text", fmt.Errorf("%w (again)", &slipway.Error{Code: slipway.EINVALID, Message: "m", Details: []string{"d"}}),
			`m\n  d (again)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorText(tt.err); got != tt.want {
				t.Errorf("errorText = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "ok\x1b[2J\nFORGED line", "a\u202eb", "\xff", "👩\u200d💻", `\x1b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := escape(s)
		if !utf8.ValidString(got) {
			t.Fatalf("escape(%q) = %q: not UTF-8", s, got)
		}
		for _, r := range got {
			if unsafeRune(r) {
				t.Fatalf("escape(%q) = %q: holds %U", s, got, r)
			}
		}
		if escape(got) != got {
			t.Fatalf("escape(%q) = %q, escaped again %q", s, got, escape(got))
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, unsafeRune) && got != s {
			t.Fatalf("escape(%q) = %q: changed safe text", s, got)
		}
	})
}

func TestLogWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain lines", []string{"web-1 | a\nweb-1 | b\n"}, "web-1 | a\nweb-1 | b\n"},
		{"ESC and carriage return escaped, tab kept", []string{"web-1 | ok\x1b[2J\rFORGED\tat main.go:1\n"},
			"web-1 | ok\\x1b[2J\\rFORGED\tat main.go:1\n"},
		{"CRLF", []string{"web-1 | a\r\n"}, "web-1 | a\\r\n"},
		{"rune split between writes", []string{"web-1 | caf\xc3", "\xa9\n"}, "web-1 | café\n"},
		{"escape sequence split between writes", []string{"web-1 | a\x1b", "[2Jb\n"}, "web-1 | a\\x1b[2Jb\n"},
		{"bidi override", []string{"web-1 | \u202eevil\n"}, "web-1 | \\u202eevil\n"},
		{"invalid UTF-8", []string{"web-1 | \xff\n"}, "web-1 | \\xff\n"},
		{"last line without newline", []string{"web-1 | a\nweb-1 | b\x1b"}, "web-1 | a\nweb-1 | b\\x1b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			lw := &logWriter{w: &b}
			for _, w := range tt.writes {
				if n, err := lw.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if err := lw.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

// TestWriteJSONAndYAML checks that -o json and -o yaml escape every character a terminal
// would act on (the newlines between lines aside), and decode to the strings given.
func TestWriteJSONAndYAML(t *testing.T) {
	for _, s := range []string{
		"plain",
		"ok\x1b[2J\nFORGED line",
		"a\r\tb\x00\x07",
		"del\x7f c1\u0080\u009b\u009f nel\u0085",
		"ls\u2028ps\u2029",
		"bidi\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
		"format\u00ad\u200b\u2060\ufeff\U000e0001\U000e007f",
		"multi\nline\ntext",
		"keep: café 日本語 👩\u200d💻 می\u200cخواهم",
	} {
		v := map[string]any{"k" + s: []any{s, map[string]string{"s": s}}}
		var j, y strings.Builder
		if err := writeJSON(&j, v); err != nil {
			t.Fatalf("writeJSON(%q): %v", s, err)
		}
		if err := writeYAML(&y, v); err != nil {
			t.Fatalf("writeYAML(%q): %v", s, err)
		}
		for _, out := range []string{j.String(), y.String()} {
			for _, r := range out {
				if r != '\n' && unsafeRune(r) {
					t.Errorf("%q: output holds %U:\n%s", s, r, out)
				}
			}
		}
		var jv, yv map[string]any
		if err := json.Unmarshal([]byte(j.String()), &jv); err != nil {
			t.Fatalf("%q: decode JSON: %v\n%s", s, err, j.String())
		}
		if err := yaml.Unmarshal([]byte(y.String()), &yv); err != nil {
			t.Fatalf("%q: decode YAML: %v\n%s", s, err, y.String())
		}
		want := map[string]any{"k" + s: []any{s, map[string]any{"s": s}}}
		if !reflect.DeepEqual(jv, want) {
			t.Errorf("%q: JSON decodes to %#v", s, jv)
		}
		if !reflect.DeepEqual(yv, want) {
			t.Errorf("%q: YAML decodes to %#v\n%s", s, yv, y.String())
		}
	}
}
