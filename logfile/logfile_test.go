package logfile_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"slipway.dev/slipway/logfile"
)

func lines(b [][]byte) []string {
	var out []string
	for _, l := range b {
		out = append(out, string(l))
	}
	return out
}

func TestTailAndReadFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\npart"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, end, err := logfile.Tail(path, 2)
	if err != nil || !slices.Equal(lines(got), []string{"three", "part"}) || end != 18 {
		t.Errorf("Tail = %q, %d, %v", lines(got), end, err)
	}
	got, next, err := logfile.ReadFrom(path, 4)
	if err != nil || !slices.Equal(lines(got), []string{"two", "three"}) || next != 14 {
		t.Errorf("ReadFrom(4) = %q, %d, %v; the partial last line waits", lines(got), next, err)
	}
	if got, _, err := logfile.Tail(filepath.Join(t.TempDir(), "none.log"), 3); err == nil {
		t.Errorf("Tail of a missing file = %q, want an error", lines(got))
	}
	empty := filepath.Join(t.TempDir(), "empty.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, end, err := logfile.Tail(empty, 3); err != nil || len(got) != 0 || end != 0 {
		t.Errorf("Tail of an empty file = %q, %d, %v", lines(got), end, err)
	}
}

// TestReadFrom_FollowsARotation: the file was copied to .1 and truncated after the reader
// read to offset 4: the lines after 4 come from .1, then the new file from its start.
func TestReadFrom_FollowsARotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	if err := os.WriteFile(path+".1", []byte("one\ntwo\nthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("four\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, next, err := logfile.ReadFrom(path, 8)
	if err != nil || strings.Join(lines(got), ",") != "three,four" || next != 5 {
		t.Errorf("ReadFrom after a rotation = %q, %d, %v; want three,four and 5", lines(got), next, err)
	}
}
