package slipway_test

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists the packages outside the standard library that pkg imports, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestLayout_RootImportsStandardLibraryOnly guards the dependency direction: the domain
// package imports nothing of the project, no database and no Kubernetes.
func TestLayout_RootImportsStandardLibraryOnly(t *testing.T) {
	all, err := exec.Command("go", "list", "-deps", "slipway.dev/slipway").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(string(all)) {
		if d == "database/sql" || d == "net/http" {
			t.Errorf("package slipway imports %s; the domain holds no I/O adapters", d)
		}
	}
	for _, d := range deps(t, "slipway.dev/slipway") {
		switch {
		case d == "slipway.dev/slipway":
		default:
			t.Errorf("package slipway imports %s; it may import the standard library only", d)
		}
	}
}

// TestLayout_AdaptersDoNotImportEachOther keeps adapters apart: only cmd/slipway wires them.
func TestLayout_AdaptersDoNotImportEachOther(t *testing.T) {
	adapters := []string{"sqlite", "httpapi", "ofrep", "platform/sim", "platform/local", "metric/web", "metric/job", "metric/builtin", "metric/prometheus"}
	out, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	exists := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		exists[p] = true
	}
	for _, a := range adapters {
		pkg := "slipway.dev/slipway/" + a
		if !exists[pkg] {
			continue
		}
		for _, d := range deps(t, pkg) {
			for _, other := range adapters {
				if other != a && d == "slipway.dev/slipway/"+other {
					t.Errorf("adapter %s imports adapter %s; wire them in cmd/slipway instead", a, other)
				}
			}
		}
	}
}
