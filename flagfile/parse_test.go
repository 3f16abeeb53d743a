package flagfile_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flagfile"
	"slipway.dev/slipway/flags"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/parse")

// TestParse_Golden parses every file in testdata/parse and compares the result (the flag set
// as JSON, or the error) with its .golden file. Run with -update to rewrite them.
func TestParse_Golden(t *testing.T) {
	files, err := filepath.Glob("testdata/parse/*.*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(file)
			fs, err := flagfile.Parse(name, data)
			var got string
			if err != nil {
				if slipway.ErrorCode(err) != slipway.EINVALID {
					t.Errorf("error code %s, want %s", slipway.ErrorCode(err), slipway.EINVALID)
				}
				got = "error: " + err.Error() + "\n"
			} else {
				b, err := json.MarshalIndent(fs, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = string(b) + "\n"
				if _, err := flags.Compile(fs); err != nil {
					t.Errorf("Compile after a successful Parse: %v", err)
				}
			}
			if strings.HasPrefix(name, "invalid") != (err != nil) {
				t.Errorf("%s: parse error = %v", name, err)
			}
			golden := strings.TrimSuffix(file, filepath.Ext(file)) + filepath.Ext(file) + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestParse_Golden -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	if n < 5 {
		t.Fatalf("found %d test files", n)
	}
}

func TestParse_JSONAndYAMLAgree(t *testing.T) {
	js := `{"metadata":{"flagSetId":"s"},"flags":{"f":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
		"targeting":{"if":[{"in":[{"var":"country"},["CA","US"]]},"on","off"]}}}}`
	ym := "metadata:\n  flagSetId: s\nflags:\n  f:\n    state: ENABLED\n    variants: {on: true, off: false}\n    defaultVariant: off\n" +
		"    targeting:\n      if: [{in: [{var: country}, [CA, US]]}, on, off]\n"
	a, err := flagfile.Parse("a.json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	b, err := flagfile.Parse("b.yaml", []byte(ym))
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("JSON:\n%s\nYAML:\n%s", ja, jb)
	}
	if a.ID != "s" {
		t.Errorf("ID = %q", a.ID)
	}
}

func TestParse_IDFromFileName(t *testing.T) {
	fs, err := flagfile.Parse("dir/checkout.flags.json", []byte(`{"flags":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if fs.ID != "checkout.flags" {
		t.Errorf("ID = %q", fs.ID)
	}
}

func TestParse_ErrorsCarryLineAndColumn(t *testing.T) {
	src := "{\n  \"flags\": {\n    \"my-flag\": {\"state\": \"ENABLED\", \"variants\": {\"on\": true, \"off\": false},\n      \"defaultVariant\": \"x\"}\n  }\n}\n"
	_, err := flagfile.Parse("f.json", []byte(src))
	var se *slipway.Error
	if err == nil || !asError(err, &se) {
		t.Fatalf("err = %v", err)
	}
	want := `f.json:4:25: flags.my-flag.defaultVariant: "x" names no variant; use one of off, on`
	if len(se.Details) != 1 || se.Details[0] != want {
		t.Errorf("details = %q, want %q", se.Details, want)
	}
}

func asError(err error, target **slipway.Error) bool {
	return errors.As(err, target)
}
