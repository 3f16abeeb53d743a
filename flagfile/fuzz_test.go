package flagfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/flagfile"
	"slipway.dev/slipway/flags"
)

// FuzzParse: Parse never panics, and a file it accepts always compiles.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/parse/*.*")
	for _, file := range files {
		if strings.HasSuffix(file, ".golden") {
			continue
		}
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("flags:\n  a: &x {state: ENABLED, variants: {on: true}}\n  b: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := flagfile.Parse("fuzz.json", data)
		if err != nil {
			if slipway.ErrorCode(err) != slipway.EINVALID {
				t.Fatalf("error code %s: %v", slipway.ErrorCode(err), err)
			}
			return
		}
		if _, err := flags.Compile(fs); err != nil {
			t.Fatalf("Parse accepted what Compile rejects: %v", err)
		}
	})
}
