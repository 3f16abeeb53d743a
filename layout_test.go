package slipway_test

import (
	"os/exec"
	"slices"
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

// testSupport lists the packages written for tests only, with the project packages each may
// import.
var testSupport = map[string][]string{
	"slipway.dev/slipway/slipwaytest":     {"slipway.dev/slipway"},
	"slipway.dev/slipway/httpapi/apitest": {"slipway.dev/slipway", "slipway.dev/slipway/httpapi"},
}

// TestLayout_TestSupportStaysInTests keeps fakes and test servers out of the binary: no
// package's own code imports a test-support package, directly or not, and a test-support
// package imports only the project packages it stands beside.
func TestLayout_TestSupportStaysInTests(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		if _, ok := testSupport[pkg]; ok {
			continue
		}
		for _, d := range strings.Fields(deps) {
			if _, ok := testSupport[d]; ok {
				t.Errorf("package %s imports test-support package %s outside its _test.go files; only tests may import it", pkg, d)
			}
		}
	}
	for pkg, allowed := range testSupport {
		for _, d := range deps(t, pkg) {
			if d != pkg && (d == "slipway.dev/slipway" || strings.HasPrefix(d, "slipway.dev/slipway/")) && !slices.Contains(allowed, d) {
				t.Errorf("test-support package %s imports %s; it may import only %s", pkg, d, strings.Join(allowed, ", "))
			}
		}
	}
}
