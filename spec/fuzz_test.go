package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"slipway.dev/slipway"
	"slipway.dev/slipway/validate"
)

// FuzzParse checks that Parse never panics, that every error is an EINVALID *slipway.Error
// with details, and that an accepted set is complete enough for the engine.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, validFiles(f)...)
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse("fuzz.yaml", data)
		if err != nil {
			var e *slipway.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *slipway.Error", err, err)
			}
			if e.Code != slipway.EINVALID || len(e.Details) == 0 {
				t.Fatalf("error code %q with %d details, want %q with at least one", e.Code, len(e.Details), slipway.EINVALID)
			}
			if len(set.Apps)+len(set.Templates) != 0 {
				t.Fatalf("a set came back with the error")
			}
			return
		}
		for _, a := range set.Apps {
			if a.Name == "" || a.Strategy.Kind() == "" {
				t.Fatalf("accepted app %+v has no name or no strategy", a)
			}
		}
		if err := validate.Set(set, nil); err != nil {
			t.Fatalf("Parse accepted a set validate.Set rejects: %v", err)
		}
	})
}
