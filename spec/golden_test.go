package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/invalid")

// errorText renders an EINVALID error as the CLI shows it: the message, then one line per
// problem.
func errorText(tb testing.TB, err error) string {
	tb.Helper()
	var e *slipway.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error is %T (%v), want *slipway.Error", err, err)
	}
	if e.Code != slipway.EINVALID {
		tb.Fatalf("error code = %q, want %q", e.Code, slipway.EINVALID)
	}
	if len(e.Details) == 0 {
		tb.Fatalf("error %q has no details", e.Message)
	}
	return e.Message + "\n" + strings.Join(e.Details, "\n") + "\n"
}

// TestParse_InvalidGolden parses every file of testdata/invalid and compares the error with
// its .golden file. Run with -update to rewrite them, then read the diff.
func TestParse_InvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 35 {
		t.Fatalf("found %d invalid files, want at least 35", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			set, err := Parse(filepath.Base(f), data)
			if err == nil {
				t.Fatalf("Parse returned no error and %d apps, %d templates", len(set.Apps), len(set.Templates))
			}
			if len(set.Apps)+len(set.Templates) != 0 {
				t.Errorf("Parse returned a set along with its error: %+v", set)
			}
			got := errorText(t, err)
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./spec -run InvalidGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
